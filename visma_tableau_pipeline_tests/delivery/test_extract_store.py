"""The shared extracts' store on a real S3-compatible server (moto's, over HTTP, through s3fs) and
on a plain folder: what one machine pushes another pulls, only when it changed, never half
written; a missing bucket and refused credentials are named with what to do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from visma_tableau_pipeline.checks import check_extract_store
from visma_tableau_pipeline.delivery.extract_store import (
    ExtractNotShared,
    ExtractStore,
    ExtractStoreAccessDenied,
    ExtractStoreNotFound,
    extract_store,
    local_sha256,
    shown_url,
)
from visma_tableau_pipeline.failures import explain
from visma_tableau_pipeline.marts.hyper import frame_from_hyper, write_hyper
from visma_tableau_pipeline.settings import ConfigError, EnvSettings, build_settings
from visma_tableau_pipeline_tests.s3_server import S3Server

MOMENT = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)


def invoices(count: int) -> pd.DataFrame:
    return pd.DataFrame({"company_id": ["nordic-no"] * count, "reference_number": [f"{n:06d}" for n in range(count)]})


@pytest.fixture(params=["s3", "folder"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ExtractStore, Callable[[], list[str]]]:
    """A store, and a function listing what it holds (names relative to its URL)."""
    if request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3")
        bucket = request.getfixturevalue("s3_bucket")
        return (ExtractStore(f"s3://{bucket}/extracts", {"endpoint_url": s3.endpoint}),
                lambda: [key.removeprefix("extracts/") for key in s3.keys(bucket)])
    folder = tmp_path / "shared"
    folder.mkdir()
    return (ExtractStore(f"file://{folder}"),
            lambda: sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()))


def test_what_one_machine_pushes_another_pulls_only_when_it_changed(shared, tmp_path):
    store, stored = shared
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    first = store.push("ap_invoices", write_hyper(invoices(3), machine_a, "ap_invoices"), MOMENT, "run-1")
    assert store.pull("ap_invoices", machine_b / "ap_invoices.hyper") == first
    pulled = machine_b / "ap_invoices.hyper"
    assert len(frame_from_hyper(pulled)) == 3
    assert (first.built_up_to, first.run_id) == (MOMENT, "run-1")
    inode = pulled.stat().st_ino
    assert store.pull("ap_invoices", pulled) == first and pulled.stat().st_ino == inode  # current: not downloaded

    second = store.push("ap_invoices", write_hyper(invoices(5), machine_a, "ap_invoices"), None, "run-2")
    assert store.pull("ap_invoices", pulled) == second and len(frame_from_hyper(pulled)) == 5
    assert second.built_up_to is None  # not known: the next build builds it whole
    third = store.push("ap_invoices", write_hyper(invoices(7), machine_a, "ap_invoices"), MOMENT, "run-3")
    # the pointer, the current content and the one it replaced (a reader may still be downloading it);
    # nothing under a temporary name
    assert stored() == ["ap_invoices.json", *sorted(f"ap_invoices/{v.sha256}.hyper" for v in (second, third))]
    assert local_sha256(pulled) == second.sha256 and store.pull("ap_invoices", pulled) == third


def test_a_table_nobody_shared_is_none_to_pull_and_an_error_to_publish(shared, tmp_path):
    store, _ = shared
    local = write_hyper(invoices(2), tmp_path / "b", "gl_balances")
    assert store.pull("gl_balances", local) is None
    assert len(frame_from_hyper(local)) == 2  # left as it was
    with pytest.raises(ExtractNotShared, match=r"extract gl_balances at .*: no run has shared it yet; build it first"):
        store.pull_existing("gl_balances", local)


def test_a_missing_bucket_is_named_with_what_to_do(s3, s3_bucket, tmp_path):
    store = ExtractStore("s3://no-such-bucket/extracts", {"endpoint_url": s3.endpoint})
    with pytest.raises(ExtractStoreNotFound) as missing:
        store.pull("ap_invoices", tmp_path / "ap_invoices.hyper")
    assert explain(missing.value) == (
        "reading extract ap_invoices at s3://no-such-bucket/extracts: the bucket no-such-bucket does not exist; "
        "create it, or correct VTP_EXTRACTS_URL")


def test_refused_credentials_are_named_and_the_secret_is_not(s3, s3_bucket, tmp_path, monkeypatch):
    local = write_hyper(invoices(2), tmp_path / "a", "ap_invoices")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-4f1c2a9e7b3d")
    store = ExtractStore(f"s3://{s3_bucket}/extracts", {"endpoint_url": s3.endpoint})
    with pytest.raises(ExtractStoreAccessDenied) as refused:
        store.push("ap_invoices", local, MOMENT, "run-1")
    message = explain(refused.value)
    assert message.startswith(f"reading extract ap_invoices at s3://{s3_bucket}/extracts: access denied (")
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message
    assert "wrong-secret" not in message and s3.secret_access_key not in message
    assert s3.keys(s3_bucket) == []


def test_the_settings_name_the_store_and_its_endpoint(tmp_path, s3):
    def settings(**env):
        return build_settings(EnvSettings(vtp_home=tmp_path, _env_file=None, **env))

    assert extract_store(settings()) is None  # unset: the local folder only, as on one machine
    store = extract_store(settings(vtp_extracts_url="s3://bucket/prefix", vtp_extracts_endpoint_url=s3.endpoint))
    assert store is not None and store.url == "s3://bucket/prefix"
    with pytest.raises(ConfigError, match="VTP_EXTRACTS_ENDPOINT_URL is set but VTP_EXTRACTS_URL is not"):
        settings(vtp_extracts_endpoint_url=s3.endpoint)
    with pytest.raises(ConfigError, match="VTP_EXTRACTS_ENDPOINT_URL applies to s3:// URLs only"):
        settings(vtp_extracts_url=f"file://{tmp_path}", vtp_extracts_endpoint_url=s3.endpoint)
    with pytest.raises(ConfigError, match="VTP_EXTRACTS_URL is nosuch://x, which fsspec cannot open"):
        extract_store(settings(vtp_extracts_url="nosuch://x"))


def test_a_password_in_the_url_is_never_shown(tmp_path):
    store = ExtractStore(f"file://{tmp_path}")
    assert store.shown == f"file://{tmp_path}"
    assert shown_url("sftp://vtp:s3cr3t@files.example/extracts") == "sftp://vtp:***@files.example/extracts"


def test_vtp_check_reads_the_shared_extracts(s3, s3_bucket, tmp_path):
    def checked(url: str) -> tuple[bool, str]:
        result = check_extract_store(build_settings(EnvSettings(
            vtp_home=tmp_path, vtp_extracts_url=url, vtp_extracts_endpoint_url=s3.endpoint, _env_file=None)))
        return result.ok, result.message

    store = ExtractStore(f"s3://{s3_bucket}/extracts", {"endpoint_url": s3.endpoint})
    store.push("ap_invoices", write_hyper(invoices(2), tmp_path / "a", "ap_invoices"), MOMENT, "run-1")
    ok, message = checked(f"s3://{s3_bucket}/extracts")
    assert ok and message.startswith("readable; 1 of ") and "dashboard tables shared, the latest by run run-1 at " in message
    assert checked("s3://no-such-bucket/extracts") == (False, (
        "reading extract ap_invoices at s3://no-such-bucket/extracts: the bucket no-such-bucket does not exist; "
        "create it, or correct VTP_EXTRACTS_URL"))
