"""Tableau's XML wire format: every response is a `<tsResponse>` in namespace http://tableau.com/api.

Responses are built without a namespace prefix and given the default namespace on the root, which
is how Tableau writes them (TSC looks elements up as `t:datasource` with `t` bound to the
namespace). Requests arrive as `<tsRequest>` without a namespace; both forms are accepted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from starlette.responses import Response

from visma_tableau_pipeline.sandbox.tableau.errors import TableauApiError, bad_request

NAMESPACE = "http://tableau.com/api"
_SCHEMA_LOCATION = f"{NAMESPACE} https://help.tableau.com/samples/en-us/rest_api/ts-api_3_24.xsd"
XML_MEDIA_TYPE = "application/xml;charset=utf-8"


def element(tag: str, attrs: dict[str, object | None] | None = None, *children: ET.Element) -> ET.Element:
    """An element whose `None` attributes are left out, so optional fields are simply absent."""
    node = ET.Element(tag, {k: _attr(v) for k, v in (attrs or {}).items() if v is not None})
    node.extend(children)
    return node


def _attr(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ts_response(children: Iterable[ET.Element], status: int = 200) -> Response:
    root = ET.Element(
        "tsResponse",
        {
            "xmlns": NAMESPACE,
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:schemaLocation": _SCHEMA_LOCATION,
        },
    )
    root.extend(children)
    body = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return Response(body, status_code=status, media_type=XML_MEDIA_TYPE)


def error_response(error: TableauApiError) -> Response:
    node = element(
        "error",
        {"code": error.code},
        _text("summary", error.summary),
        _text("detail", error.detail),
    )
    return ts_response([node], status=error.status)


def _text(tag: str, text: str) -> ET.Element:
    node = ET.Element(tag)
    node.text = text
    return node


def parse_request(body: bytes) -> ET.Element:
    """The `<tsRequest>` root with namespaces stripped, or a 400 that says why it is unreadable."""
    if not body.strip():
        raise bad_request("The request body is empty; a <tsRequest> document is expected.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise bad_request(f"The request body is not well-formed XML: {exc}") from None
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]
    return root


def required_child(root: ET.Element, path: str) -> ET.Element:
    found = root.find(path)
    if found is None:
        raise bad_request(f"The request has no <{path}> element.")
    return found
