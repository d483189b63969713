"""Items decoded one by one with their own text, and volatile fields cut out of that text.

The promise the state store relies on: a text handed on decodes to exactly the item without its
volatile fields (`metadata`, `timeStamp`), or the text is None and the store encodes the record
itself. Cutting is checked on the sandbox's real pages and on hand-made items with the fields in
every position, with odd whitespace, nested, inside strings and repeated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from visma_tableau_pipeline.sandbox.visma import VismaSandbox
from visma_tableau_pipeline.settings import sandbox_companies
from visma_tableau_pipeline.visma.auth import TokenProvider
from visma_tableau_pipeline.visma.catalogue import ENTITIES
from visma_tableau_pipeline.visma.items import (
    NonFiniteNumber,
    NotJson,
    decode,
    decode_for_store,
    decode_with_texts,
    without_volatile_fields,
)

VOLATILE = ("metadata", "timeStamp")


def without_volatile(item: dict) -> dict:
    return {name: value for name, value in item.items() if name not in VOLATILE}


def loads(text: str) -> object:
    return json.loads(text, parse_float=Decimal)


def assert_texts_hold_the_items(raw: bytes) -> list[str | None]:
    """Every text decodes to its item without volatile fields; the texts are what came back."""
    document, texts = decode_with_texts(raw)
    assert document == json.loads(raw, parse_float=Decimal)
    items = document if isinstance(document, list) else [document]
    assert len(texts) == len(items)
    for text, item in zip(texts, items):
        if text is not None:
            assert loads(text) == without_volatile(item), text
    return texts


# -- the sandbox's own pages -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_pages() -> Iterator[dict[str, bytes]]:
    """The first page of every paged entity of one sandbox company, as the sandbox sent it."""
    with VismaSandbox(120, seed=3) as sandbox:
        company = sandbox_companies(sandbox.base_url)[0]
        pages = {}
        with httpx.Client(base_url=sandbox.base_url, timeout=30) as http:
            token = TokenProvider(company, http).token()
            for entity in ENTITIES:
                if "{" in entity.path:
                    continue
                params = {"pageNumber": 1, "pageSize": 100, "lastModifiedDateTime": "1900-01-01"}
                response = http.get(entity.path, params=params, headers={"Authorization": f"Bearer {token}"})
                if response.status_code == 200:
                    pages[entity.name] = response.content
        yield pages


def test_every_sandbox_page_gives_texts_that_decode_to_its_items(sandbox_pages):
    assert "supplier_invoices" in sandbox_pages and "journal_transactions" in sandbox_pages
    for raw in sandbox_pages.values():
        assert_texts_hold_the_items(raw)


def test_supplier_invoices_keep_visma_s_own_text(sandbox_pages):
    raw = sandbox_pages["supplier_invoices"]
    texts = assert_texts_hold_the_items(raw)
    assert texts and None not in texts  # the cheap path is taken, not canonical JSON for all
    page = raw.decode()
    for text in texts:
        assert '"timeStamp"' not in text and '"metadata"' not in text
        # Visma's own spelling: the text is a piece of the page with the volatile tail cut off.
        assert page.find(text[:-1]) >= 0


def assert_stored_form_holds_the_items(raw: bytes, fields: tuple[str, ...]) -> list[str | None]:
    """decode_for_store: each record with a text holds just `fields` and the volatile ones, its
    text the whole item."""
    records, texts = decode_for_store(raw, fields)
    items = json.loads(raw, parse_float=Decimal)
    assert texts == decode_with_texts(raw)[1]
    assert len(records) == len(items) == len(texts)
    for record, text, item in zip(records, texts, items):
        if text is None:
            assert record == item
        else:
            assert record == {name: item[name] for name in (*fields, *VOLATILE) if name in item}
            assert loads(text) == without_volatile(item)
    return texts


def test_every_sandbox_page_in_the_store_s_form_holds_its_items(sandbox_pages):
    for name, raw in sandbox_pages.items():
        fields = ("referenceNumber", "supplier", "lastModifiedDateTime", "financialPeriod", "metadata")
        texts = assert_stored_form_holds_the_items(raw, fields)
        if name == "supplier_invoices":
            assert None not in texts
            records, _ = decode_for_store(raw, fields)
            assert set(records[0]) == {"referenceNumber", "supplier", "lastModifiedDateTime",
                                       "financialPeriod", "metadata", "timeStamp"}
            assert isinstance(records[0]["supplier"], dict)  # a field is decoded, with its nesting


def test_in_the_store_s_form_an_item_that_cannot_be_cut_comes_whole():
    plain = '{"number":"1","amount":1.10,"timeStamp":"AAE="}'
    nested = '{"number":"2","amount":2.20,"lines":[{"timeStamp":"AAI="}],"timeStamp":"AAE="}'
    raw = f"[{plain},{nested}]".encode()
    records, texts = decode_for_store(raw, ("number",))
    assert records == [{"number": "1", "timeStamp": "AAE="}, loads(nested)]
    assert texts == ['{"number":"1","amount":1.10}', None]
    assert str(records[1]["amount"]) == "2.20"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":"X","timeStamp":"y"}',  # one object, not a list
        b'[1,"x",{"a":1}]',  # items that are not objects
        '[{"a":"é"}]'.encode("utf-16"),  # not UTF-8
        b'\xef\xbb\xbf[{"a":1}]',  # a byte order mark
        b'[{"a":"\\ud800","b":1}]',  # a lone surrogate, which json.loads reads
    ],
)
def test_in_the_store_s_form_what_msgspec_refuses_comes_as_decode_with_texts_gives_it(raw):
    assert decode_for_store(raw, ("a",)) == decode_with_texts(raw)


def test_in_the_store_s_form_bad_answers_are_refused_as_everywhere():
    with pytest.raises(NotJson):
        decode_for_store(b'[{"a":1},{"a":"\xff"}]', ("a",))  # not UTF-8 inside a member
    with pytest.raises(NotJson):
        decode_for_store(b'[{"a":1},{"a":[1,}]', ("a",))
    with pytest.raises(NonFiniteNumber):
        decode_for_store(b'[{"a":1},{"b":NaN}]', ("a",))


# -- hand-made items -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item_text",
    [
        '{"timeStamp":"AAE=","number":"1","amount":0.10}',  # first
        '{"number":"1","timeStamp":"AAE=","amount":0.10}',  # middle
        '{"number":"1","amount":0.10,"timeStamp":"AAE="}',  # last
        '{"timeStamp":"AAE="}',  # the only member
        '{"metadata":{"totalCount":2},"timeStamp":"AAE=","number":"1"}',  # both, first
        '{"number":"1","metadata":{"totalCount":2},"amount":1.5,"timeStamp":"AAE="}',  # apart
        '{"timeStamp":"AAE=","metadata":{"totalCount":2}}',  # both and nothing else
        '{"metadata":{"totalCount":2,"maxPageSize":1000},"timeStamp":"AAE="}',
        '{ "number" : "1" ,\n "timeStamp" :\t"AAE=" , "amount" : 0.10 }',  # whitespace
        '{\n  "timeStamp": "AAE=",\n  "number": "1"\n}',
        '{"number":"1" , "metadata" : { "totalCount" : 2 } }',
        '{"number":"1","lines":[{"amount":1.00}],"timeStamp":"AAE=","metadata":{"a":[1,{"b":"}"}]}}',
        '{"name":"Ørsta \\"Data\\" AS","timeStamp":"AAE="}',  # escapes and non-ASCII text
        '{"note":"see \\"timeStamp\\"","timeStamp":"AAE="}',  # quoted in a string: no match
    ],
)
def test_volatile_fields_are_cut_from_visma_s_text(item_text):
    item = loads(item_text)
    text = without_volatile_fields(item_text, item)
    assert text is not None
    assert loads(text) == without_volatile(item)
    page_texts = assert_texts_hold_the_items(f"[{item_text},{item_text}]".encode())
    assert page_texts == [text, text]


@pytest.mark.parametrize(
    "item_text",
    [
        '{"number":"1","lines":[{"timeStamp":"AAI="}],"timeStamp":"AAE="}',  # nested as well
        '{"number":"1","lines":[{"timeStamp":"AAI="}]}',  # only nested
        '{"number":"1","note":"timeStamp","timeStamp":"AAE="}',  # the name as a value
        '{"number":"1","note":"see \\"timeStamp","timeStamp":"AAE="}',  # ending a string
        '{"timeStamp":"AAE=","number":"1","timeStamp":"AAF="}',  # a repeated key
        '{"number":"1","timeStamp":"AAE=","timeStamp":"AAF="}',
        '{"number":"1","\\u0074imeStamp":"AAE=","lines":[{"timeStamp":"AAI="}]}',  # escaped letter
        '{"number":"1","metadata":{"metadata":1}}',
    ],
)
def test_texts_that_cannot_be_cut_safely_are_left_to_canonical_json(item_text):
    item = loads(item_text)
    assert without_volatile_fields(item_text, item) is None
    assert assert_texts_hold_the_items(f"[{item_text}]".encode()) == [None]


def test_an_item_that_cannot_be_cut_leaves_its_neighbours_cut():
    plain = '{"number":"1","timeStamp":"AAE="}'
    nested = '{"number":"2","lines":[{"timeStamp":"AAI="}],"timeStamp":"AAE="}'
    texts = assert_texts_hold_the_items(f"[{plain},{nested},{plain}]".encode())
    assert texts == ['{"number":"1"}', None, '{"number":"1"}']


def test_decimals_keep_visma_s_digits():
    (item,), (text,) = decode_with_texts(b'[{"amount":0.10,"rate":1.0000,"n":100,"timeStamp":"x"}]')
    assert text == '{"amount":0.10,"rate":1.0000,"n":100}'
    assert item["amount"] == Decimal("0.10") and str(item["amount"]) == "0.10"
    assert str(loads(text)["rate"]) == "1.0000"


# -- what the answer as a whole may be -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "document", "texts"),
    [
        (b"[]", [], []),
        (b" [ ] \n", [], []),
        (b'\xef\xbb\xbf[{"a":1}]', [{"a": 1}], ['{"a":1}']),  # a UTF-8 byte order mark
        ('[{"a":"é"}]'.encode("utf-16"), [{"a": "é"}], ['{"a":"é"}']),
        (b'[ {"a":1} , {"b":2} ]', [{"a": 1}, {"b": 2}], ['{"a":1}', '{"b":2}']),
        (b'{"id":"X","timeStamp":"y"}', {"id": "X", "timeStamp": "y"}, ['{"id":"X"}']),
        (b'[1,"x",{"a":1}]', [1, "x", {"a": 1}], [None, None, '{"a":1}']),
    ],
)
def test_lists_and_single_objects_are_split_into_items(raw, document, texts):
    assert decode_with_texts(raw) == (document, texts)


@pytest.mark.parametrize(
    "raw",
    [b"<html>gateway</html>", b"", b"[", b'[{"a":1}', b'[{"a":1}}', b'[{"a":1}] x', b'[{"a":1} {"b":2}]',
     b'[{"a":1},]', b"\xff\xfe\xfd"],
)
def test_something_that_is_not_json_is_refused(raw):
    with pytest.raises(NotJson):
        decode_with_texts(raw)
    with pytest.raises(NotJson):
        decode(raw)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(literal):
    raw = f'[{{"a":1}},{{"amount":{literal}}}]'.encode()
    with pytest.raises(NonFiniteNumber) as raised:
        decode_with_texts(raw)
    assert raised.value.literal == literal
    with pytest.raises(NonFiniteNumber):
        decode(raw)
