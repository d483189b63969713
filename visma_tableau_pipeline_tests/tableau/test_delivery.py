"""Delivering dashboard tables to the Tableau sandbox over HTTP with the real TSC.

What Tableau ends up holding is read back from the sandbox's stored .hyper file and compared,
row for row and digit for digit, with the table that was delivered.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import tableauserverclient as TSC

from visma_tableau_pipeline.delivery.deliver import DeliveryOutcome, deliver_table, replace_partition
from visma_tableau_pipeline.delivery.payload import write_payload
from visma_tableau_pipeline.delivery.row_changes import (
    build_actions,
    compute_changes,
    partition_replace_actions,
    request_id,
)
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.sandbox.tableau import TableauSandbox
from visma_tableau_pipeline.tableau.datasources import ensure_project, publish_changes
from visma_tableau_pipeline.tableau.errors import TableauJobFailed
from visma_tableau_pipeline.tableau.session import RetryPolicy, TableauSession
from visma_tableau_pipeline_tests.tableau.asgi import BeforeRequest, LoseFirstResponse
from visma_tableau_pipeline_tests.tableau.conftest import PAT_NAME, PAT_SECRET, settings_for
from visma_tableau_pipeline_tests.tableau.tables import KEY, edited, invoices, rows_of

NAME = "ap_invoices"


def stored(sandbox: TableauSandbox, name: str = NAME) -> pd.DataFrame:
    return frame_from_hyper(sandbox.datasource_path(name))


def requests_to(sandbox: TableauSandbox, method: str, suffix: str) -> int:
    return sum(1 for r in sandbox.requests
               if r.method == method and r.path.endswith(suffix) and r.status < 300)


def deliver(session: TableauSession, project_id: str, frame: pd.DataFrame, workdir: Path,
            last: DeliveryOutcome | None = None, **options: object) -> DeliveryOutcome:
    return deliver_table(session, project_id, NAME, frame, KEY, last.hashes if last else {},
                         workdir, previous_schema=last.schema_fingerprint if last else None,
                         **options)  # type: ignore[arg-type]


@pytest.fixture
def project_id(session: TableauSession) -> str:
    return ensure_project(session, "Visma")


def test_project_is_created_once(session: TableauSession, project_id: str) -> None:
    assert ensure_project(session, "Visma") == project_id
    names = session.call(lambda server: [p.name for p in TSC.Pager(server.projects)])
    assert names.count("Visma") == 1


def test_first_delivery_creates_the_data_source_with_every_row_exact(
    session: TableauSession, served: TableauSandbox, project_id: str, tmp_path: Path,
) -> None:
    frame = invoices(40)
    outcome = deliver(session, project_id, frame, tmp_path)
    assert outcome.mode == "create" and outcome.rows_upserted == 40
    assert rows_of(stored(served)) == rows_of(frame)
    assert {row.action for row in outcome.rows} == {"insert"} and len(outcome.hashes) == 40
    assert outcome.bytes_sent == (tmp_path / f"{NAME}.hyper").stat().st_size
    assert served.bytes_received >= outcome.bytes_sent


def test_incremental_delivery_sends_only_changes_and_leaves_exactly_the_table(
    session: TableauSession, served: TableauSandbox, project_id: str, tmp_path: Path,
) -> None:
    first = deliver(session, project_id, invoices(40), tmp_path)
    current = edited(invoices(40))
    outcome = deliver(session, project_id, current, tmp_path, first)
    assert outcome.mode == "incremental"
    assert (outcome.rows_upserted, outcome.rows_deleted) == (4, 2)
    assert rows_of(stored(served)) == rows_of(current)
    assert requests_to(served, "POST", "/datasources") == 1  # the first publish only
    assert requests_to(served, "PATCH", "/data") == 1
    expected = compute_changes(current, KEY, first.hashes)
    assert outcome.hashes == expected.hashes
    assert outcome.request_ids == (request_id(
        NAME, expected.rows, build_actions(KEY, has_upserts=True, has_deletes=True)),)
    assert sorted((r.key, r.action) for r in outcome.rows) == sorted(
        (r.key, r.action) for r in expected.rows)
    again = deliver(session, project_id, current, tmp_path, outcome)
    assert again.mode == "unchanged" and again.bytes_sent == 0
    assert requests_to(served, "PATCH", "/data") == 1


def test_payloads_over_the_limit_are_split_into_requests_with_the_same_end_state(
    session: TableauSession, served: TableauSandbox, project_id: str, tmp_path: Path,
) -> None:
    first = deliver(session, project_id, invoices(2500, company="c2"), tmp_path)
    current = invoices(2500, company="c2")
    current["supplier_name"] = current["supplier_name"].str.upper()  # every named row changes
    current = current.iloc[5:].reset_index(drop=True)  # and five rows go
    outcome = deliver(session, project_id, current, tmp_path, first, max_payload_bytes=70_000)
    assert len(outcome.request_ids) >= 2 and len(set(outcome.request_ids)) == len(outcome.request_ids)
    assert requests_to(served, "PATCH", "/data") == len(outcome.request_ids)
    assert rows_of(stored(served)) == rows_of(current)


def test_changed_columns_fall_back_to_a_full_overwrite(
    session: TableauSession, served: TableauSandbox, project_id: str, tmp_path: Path,
) -> None:
    first = deliver(session, project_id, invoices(30), tmp_path)
    widened = invoices(30).assign(payment_terms=pd.array(["30D"] * 30, dtype="string"))
    outcome = deliver(session, project_id, widened, tmp_path, first)
    assert outcome.mode == "overwrite" and "columns or types changed" in outcome.reason
    assert list(stored(served).columns) == list(widened.columns)
    assert rows_of(stored(served)) == rows_of(widened)
    assert requests_to(served, "PATCH", "/data") == 0
    full = deliver(session, project_id, widened, tmp_path, outcome, full=True)
    assert full.mode == "overwrite" and rows_of(stored(served)) == rows_of(widened)


def test_a_repeated_request_id_is_applied_once(
    session: TableauSession, served: TableauSandbox, project_id: str, tmp_path: Path,
) -> None:
    deliver(session, project_id, invoices(10), tmp_path)
    datasource_id = served.state.datasources.by_name(NAME).id
    extra = invoices(13).iloc[10:].reset_index(drop=True)  # three new invoices
    batch = compute_changes(extra, KEY, {}).batch
    payload = write_payload(batch, tmp_path / "extra.hyper")
    inserts = partition_replace_actions("company_id", "c1", with_delete=False)  # plain insert
    rid = request_id(NAME, batch.rows, inserts)
    publish_changes(session, datasource_id, payload, inserts, rid)
    publish_changes(session, datasource_id, payload, inserts, rid)
    assert len(stored(served)) == 13
    publish_changes(session, datasource_id, payload, inserts, rid + "-other")  # a new id applies
    assert len(stored(served)) == 16


def test_an_update_whose_answer_was_lost_is_retried_and_applied_once(
    sandbox: TableauSandbox, tmp_path: Path,
) -> None:
    sandbox.app = LoseFirstResponse(sandbox.app, lambda method, path: method == "PATCH")
    no_wait = RetryPolicy(sleep=lambda seconds: None)
    with sandbox.serve(), TableauSession(settings_for(sandbox), retry=no_wait) as session:
        project_id = ensure_project(session, "Visma")
        first = deliver(session, project_id, invoices(10), tmp_path)
        current = invoices(13)  # three inserts: doubled if the retry applied again
        outcome = deliver(session, project_id, current, tmp_path, first)
        assert requests_to(sandbox, "PATCH", "/data") == 2  # both reached Tableau, one applied
        assert rows_of(stored(sandbox)) == rows_of(current)
        assert outcome.rows_upserted == 3


def test_session_taken_over_mid_publish_recovers_with_a_correct_result(
    sandbox: TableauSandbox, tmp_path: Path,
) -> None:
    def second_sign_in_with_the_same_pat() -> None:
        intruder = TSC.Server(sandbox.base_url, use_server_version=True)
        intruder.auth.sign_in(TSC.PersonalAccessTokenAuth(PAT_NAME, PAT_SECRET,
                                                          site_id=sandbox.site_content_url))

    sandbox.app = BeforeRequest(sandbox.app, lambda method, path: method == "PATCH",
                                second_sign_in_with_the_same_pat)
    with sandbox.serve(), TableauSession(settings_for(sandbox)) as session:
        project_id = ensure_project(session, "Visma")
        first = deliver(session, project_id, invoices(20), tmp_path)
        current = edited(invoices(20))
        outcome = deliver(session, project_id, current, tmp_path, first)
        assert outcome.mode == "incremental" and session.sign_ins == 2
        assert rows_of(stored(sandbox)) == rows_of(current)
        assert [r.status for r in sandbox.requests if r.method == "PATCH"] == [401, 202]


def test_a_failed_update_job_raises_with_tableaus_notes(
    session: TableauSession, served: TableauSandbox, project_id: str, tmp_path: Path,
) -> None:
    deliver(session, project_id, invoices(5), tmp_path)
    datasource_id = served.state.datasources.by_name(NAME).id
    batch = compute_changes(invoices(6).iloc[5:], KEY, {}).batch
    payload = write_payload(batch, tmp_path / "bad.hyper")
    wrong_key = build_actions(["no_such_column"], has_upserts=True, has_deletes=False)
    with pytest.raises(TableauJobFailed) as failed:
        publish_changes(session, datasource_id, payload, wrong_key, "bad-request-1")
    assert failed.value.notes and "no_such_column" in str(failed.value)
    assert len(stored(served)) == 5


def test_replacing_a_partition_swaps_exactly_its_rows(
    session: TableauSession, served: TableauSandbox, project_id: str, tmp_path: Path,
) -> None:
    table = invoices(30)
    first = deliver(session, project_id, table, tmp_path)
    credit_notes = table[table["document_type"] == "CreditNote"].reset_index(drop=True)
    replacement = credit_notes.iloc[1:].assign(supplier_name="Re-stated").reset_index(drop=True)
    previous = {k: h for k, h in first.hashes.items() if "|CreditNote|" in k}
    outcome = replace_partition(session, first.datasource_id, NAME, replacement, KEY,
                                "document_type", "CreditNote", previous, tmp_path,
                                max_payload_bytes=70_000)
    expected = pd.concat([table[table["document_type"] != "CreditNote"], replacement])
    assert rows_of(stored(served)) == rows_of(expected)
    assert outcome.rows_deleted == 1 and {r.action for r in outcome.rows} == {"update", "delete"}
