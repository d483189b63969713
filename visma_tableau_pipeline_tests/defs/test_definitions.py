"""The Dagster layer: the code location loads, assets materialize against the sandbox, and the
schedule and sensors ask for the right partitions."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
from sqlalchemy import func, select

from visma_tableau_pipeline.definitions import defs
from visma_tableau_pipeline.defs.marts.assets import mart_asset_key
from visma_tableau_pipeline.marts.hyper import frame_from_hyper
from visma_tableau_pipeline.marts.registry import MART_TABLES
from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.state.schema import inbox
from visma_tableau_pipeline.visma.catalogue import ENTITIES
from visma_tableau_pipeline_tests.defs.conftest import (
    COMPANY,
    MONTH,
    sync_invoice_month,
)


def test_every_asset_has_a_group_kinds_and_a_description():
    graph = defs().resolve_asset_graph()
    specs = {key: graph.get(key) for key in graph.get_all_asset_keys()}
    assert len(specs) == len(ENTITIES) + 2 * len(MART_TABLES) + 3  # + directory, entitlements twice
    for key, node in specs.items():
        assert node.group_name in {"visma_entities", "dashboard_tables", "tableau_data_sources"}, key
        assert node.kinds, key
        assert node.description and len(node.description) > 30, key
    invoices = graph.get(dg.AssetKey(["visma", "supplier_invoices"]))
    assert set(invoices.partitions_def.partition_dimension_names) == {"company", "month"}
    ap = graph.get(mart_asset_key(next(t for t in MART_TABLES if t.name == "ap_invoices")))
    assert dg.AssetKey(["visma", "supplier_invoices"]) in ap.parent_keys


def test_a_partition_then_the_dashboard_tables_materialize(sandbox_env):
    instance = dg.DagsterInstance.ephemeral()
    result = sync_invoice_month(instance)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    truth = [r for r in sandbox_env.records(COMPANY, "supplier_invoices") if r["financialPeriod"] == "202503"]
    assert metadata["records_read"].value == len(truth) > 0
    assert metadata["api_calls"].value >= 1

    ap = mart_asset_key(next(t for t in MART_TABLES if t.name == "ap_invoices"))
    result = defs().resolve_implicit_job_def_def_for_assets([ap]).execute_in_process(
        instance=instance, asset_selection=[ap]
    )
    assert result.success
    extract = frame_from_hyper(get_settings().extracts_dir / "ap_invoices.hyper")
    assert sorted(extract["reference_number"]) == sorted(r["referenceNumber"] for r in truth)
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(e.event_specific_data.passed for e in checks)


def test_the_tableau_data_source_publishes_and_tracks_the_pat(sandbox_env, tableau_env):
    from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
    from visma_tableau_pipeline.marts.registry import mart_table

    instance = dg.DagsterInstance.ephemeral()
    mart, published = mart_asset_key(mart_table("suppliers")), tableau_asset_key(mart_table("suppliers"))
    result = defs().resolve_implicit_job_def_def_for_assets([mart, published]).execute_in_process(
        instance=instance, asset_selection=[mart, published]
    )
    assert result.success
    metadata = next(e for e in result.get_asset_materialization_events() if e.asset_key == published).materialization.metadata
    assert metadata["mode"].value == "create" and metadata["bytes_sent"].value > 0
    stored = frame_from_hyper(tableau_env.datasource_path("suppliers"))
    assert len(stored) == sum(1 for c in ("nordic-no", "nordic-se") for _ in sandbox_env.records(c, "suppliers"))
    pat_checks = [e.event_specific_data for e in result.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "pat_expiry"]
    assert pat_checks and all(c.passed for c in pat_checks)


def test_the_nightly_schedules_cover_every_company_and_month(sandbox_env):
    nightly_master_data, nightly_period_entities = map(
        defs().resolve_schedule_def, ("nightly_master_data", "nightly_period_entities"))
    when = datetime(2026, 11, 24, 2, 0)
    master = list(nightly_master_data(dg.build_schedule_context(scheduled_execution_time=when)))
    with dg.build_schedule_context(scheduled_execution_time=when, resources=defs().resources) as context:
        periods = list(nightly_period_entities(context))
    assert {r.partition_key for r in master} == {"nordic-no", "nordic-se"}
    ranges = {(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in periods}
    assert ranges == {("nordic-no|2025-01-01", "nordic-no|2026-11-01"), ("nordic-se|2025-01-01", "nordic-se|2026-11-01")}


def test_the_nightly_run_reconciles_master_data_and_open_periods_and_the_weekly_one_everything(sandbox_env):
    nightly_master_data, nightly_period_entities, weekly_period_entities = map(
        defs().resolve_schedule_def,
        ("nightly_master_data", "nightly_period_entities", "weekly_reconciliation_period_entities"))
    expected = {nightly_master_data: {"full": True}, nightly_period_entities: {"open_periods_in_full": True},
                weekly_period_entities: {"full": True}}
    when = datetime(2026, 11, 29, 4, 0)
    for schedule, config in expected.items():
        with dg.build_schedule_context(scheduled_execution_time=when, resources=defs().resources) as context:
            requests = list(schedule(context))
        assert len(requests) == 2
        job = defs().resolve_job_def(schedule.job_name)
        for request in requests:
            dg.validate_run_config(job, request.run_config)
            ops = request.run_config["ops"]
            assert set(ops) == {"__".join(key.path) for key in job.asset_layer.executable_asset_keys}, schedule.name
            assert all(op["config"] == config for op in ops.values()), schedule.name


# Every schedule and sensor starts running, so a fresh deployment runs the pipeline by itself.
# One that must start stopped is named here with the reason.
STOPPED_ON_PURPOSE: dict[str, str] = {}


def test_every_schedule_and_sensor_starts_running():
    repository = defs().get_repository_def()
    instigators = [*repository.schedule_defs, *repository.sensor_defs]
    assert {i.name for i in instigators} >= {
        "nightly_master_data", "nightly_period_entities", "weekly_reconciliation_period_entities",
        "visma_polling_sensor", "visma_webhook_sensor", "tableau_webhook_sensor", "automation_condition_sensor"}
    stopped = {i.name for i in instigators if i.default_status.value != "RUNNING"}
    assert stopped == set(STOPPED_ON_PURPOSE), f"start stopped without a reason: {stopped - set(STOPPED_ON_PURPOSE)}"


def test_the_declared_automation_sensor_covers_every_asset_with_an_automation_condition():
    repository = defs().get_repository_def()
    sensor = next(s for s in repository.sensor_defs if s.name == "automation_condition_sensor")
    graph = defs().resolve_asset_graph()
    automated = {key for key in graph.get_all_asset_keys() if graph.get(key).automation_condition is not None}
    assert automated and sensor.asset_selection.resolve(graph) == automated
    # Dagster adds its own (stopped) default sensor for any automated asset left uncovered
    assert "default_automation_condition_sensor" not in {s.name for s in repository.sensor_defs}


def test_the_polling_sensor_runs_what_changed_once(sandbox_env):
    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.visma.plan import sync_all

    visma_polling_sensor = defs().resolve_sensor_def("visma_polling_sensor")
    settings = get_settings()
    state = defs().resources["state"]
    sync_all(settings, resolved_companies(settings)[:1], state.db())
    resources, instance = defs().resources, dg.DagsterInstance.ephemeral()

    with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance) as context:
        quiet = visma_polling_sensor(context)
    assert not quiet.run_requests, "nothing changed, yet the sensor asked for runs"

    invoice = next(r for r in sandbox_env.records(COMPANY, "supplier_invoices") if r["financialPeriod"] == "202503")
    sandbox_env.modify(COMPANY, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))
    with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance, cursor=quiet.cursor) as context:
        changed = visma_polling_sensor(context)
    invoice_runs = [r for r in changed.run_requests if r.asset_selection == [dg.AssetKey(["visma", "supplier_invoices"])]]
    assert [r.partition_key for r in invoice_runs] == [dg.MultiPartitionKey({"company": COMPANY, "month": MONTH})]

    with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance, cursor=changed.cursor) as context:
        assert not visma_polling_sensor(context).run_requests


def test_a_polling_tick_with_more_changes_than_a_probe_reads_runs_every_month_once(sandbox_env):
    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.visma.plan import sync_all

    visma_polling_sensor = defs().resolve_sensor_def("visma_polling_sensor")
    settings = get_settings()
    state = defs().resources["state"]
    sync_all(settings, resolved_companies(settings)[:1], state.db())
    resources, instance = defs().resources, dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance, cursor=cursor) as context:
            return visma_polling_sensor(context)

    quiet = tick(None)
    # One import releases 1,001 invoices with one lastModifiedDateTime, more than the probe's
    # 5 pages of 200. Visma lists them by key: the last one, in March 2025, lies past the probe.
    invoices = list(sandbox_env.records(COMPANY, "supplier_invoices"))
    october = next(r for r in invoices if r["financialPeriod"] == "202610")
    march = next(r for r in invoices if r["financialPeriod"] == "202503")
    store, released = sandbox_env.company(COMPANY).store("supplier_invoices"), sandbox_env.clock.tick()
    for number in range(100_001, 101_001):
        store.create({**october, "documentType": "Invoice", "referenceNumber": str(number)}, released)
    store.create({**march, "documentType": "Invoice", "referenceNumber": "199999"}, released)

    busy = tick(quiet.cursor)
    invoice_runs = [r for r in busy.run_requests if r.asset_selection == [dg.AssetKey(["visma", "supplier_invoices"])]]
    assert [(r.partition_key, r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in invoice_runs] == [(None, f"{COMPANY}|2025-01-01", f"{COMPANY}|{datetime.now():%Y-%m-01}")], \
        "the run must cover March 2025 too, whose change the probe never saw"
    launched = {r.run_key for r in busy.run_requests}
    assert {r.run_key for r in tick(quiet.cursor).run_requests} == launched  # a retried tick: the same keys
    calm = tick(busy.cursor)
    assert {r.run_key for r in calm.run_requests} <= launched  # the next tick: nothing new to launch

    june = next(r for r in invoices if r["financialPeriod"] == "202506")
    sandbox_env.modify(COMPANY, "supplier_invoices", (june["documentType"], june["referenceNumber"]))
    later = tick(calm.cursor)  # the 1,001 sit just before the cursor: the probe must still see past them
    assert [(r.partition_key, r.run_key not in launched) for r in later.run_requests] == [
        (dg.MultiPartitionKey({"company": COMPANY, "month": "2025-06-01"}), True)]


def test_a_replayed_webhook_is_stored_once_and_the_webhook_sensor_runs_nothing_for_it(sandbox_env):
    import httpx

    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.sandbox.server import ServerThread
    from visma_tableau_pipeline.visma.plan import sync_all
    from visma_tableau_pipeline.visma.webhooks import sign
    from visma_tableau_pipeline.webhook_receiver import build_receiver_app

    visma_webhook_sensor = defs().resolve_sensor_def("visma_webhook_sensor")
    settings, state, secret = get_settings(), defs().resources["state"], "visma-subscription-secret-for-tests"
    companies = resolved_companies(settings)
    sync_all(settings, companies, state.db())
    resources, instance = defs().resources, dg.DagsterInstance.ephemeral()
    tenants = {sandbox_env.tenant_id(c.company_id): c.company_id for c in companies}
    app = build_receiver_app(state.db(), visma_secret=secret, tableau_token=None, tenant_companies=tenants)
    invoice = next(r for r in sandbox_env.records(COMPANY, "supplier_invoices") if r["financialPeriod"] == "202503")
    key = (invoice["documentType"], invoice["referenceNumber"])

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance, cursor=cursor) as context:
            return visma_webhook_sensor(context)

    with ServerThread(app) as receiver:
        sandbox_env.webhooks.configure(f"{receiver}/webhooks/visma", secret)
        sandbox_env.modify(COMPANY, "supplier_invoices", key)
        sandbox_env.webhooks.wait_idle()
        first = tick(None)
        assert [r.partition_key for r in first.run_requests] == [
            dg.MultiPartitionKey({"company": COMPANY, "month": MONTH})]

        with state.db().connect() as conn:
            [delivered] = conn.execute(select(inbox.c.raw_body)).scalars().all()
        body = delivered.encode("utf-8")
        replays = [{"x-vwd-notification-id": "replayed-1", "x-vwd-tenant-id": sandbox_env.tenant_id(COMPANY)},
                   {}, {"x-vwd-tenant-id": sandbox_env.tenant_id("nordic-se")}]
        answers = [httpx.post(f"{receiver}/webhooks/visma", content=body,
                              headers={"x-vwd-signature-v1": sign(body, secret), **headers}).status_code
                   for headers in replays]
        assert answers == [200, 200, 200]  # duplicates, stored once
        calls_before = sum(sandbox_env.request_log.values())
        replayed = tick(first.cursor)
        assert not replayed.run_requests and replayed.skip_reason
        assert sum(sandbox_env.request_log.values()) == calls_before  # not even a probe of Visma

        sandbox_env.modify(COMPANY, "supplier_invoices", key)  # a real second change is news
        sandbox_env.webhooks.wait_idle()
        again = tick(first.cursor)  # a skipped tick keeps the cursor it had
        assert [r.partition_key for r in again.run_requests] == [
            dg.MultiPartitionKey({"company": COMPANY, "month": MONTH})]
        assert {r.run_key for r in again.run_requests}.isdisjoint(r.run_key for r in first.run_requests)
    with state.db().connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbox)).scalar() == 2


def test_a_record_deleted_in_visma_leaves_the_store_through_its_webhook_within_one_run(sandbox_env):
    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.sandbox.server import ServerThread
    from visma_tableau_pipeline.state import keys_for
    from visma_tableau_pipeline.visma.plan import sync_all
    from visma_tableau_pipeline.webhook_receiver import build_receiver_app

    visma_webhook_sensor = defs().resolve_sensor_def("visma_webhook_sensor")
    settings, state, secret = get_settings(), defs().resources["state"], "visma-subscription-secret-for-tests"
    companies = resolved_companies(settings)
    sync_all(settings, companies, state.db())
    tenants = {sandbox_env.tenant_id(c.company_id): c.company_id for c in companies}
    app = build_receiver_app(state.db(), visma_secret=secret, tableau_token=None, tenant_companies=tenants)
    invoice = next(r for r in sandbox_env.records(COMPANY, "supplier_invoices") if r["financialPeriod"] == "202503")
    stored_key = f"{invoice['documentType']}|{invoice['referenceNumber']}"

    with ServerThread(app) as receiver:
        sandbox_env.webhooks.configure(f"{receiver}/webhooks/visma", secret)
        sandbox_env.delete(COMPANY, "supplier_invoices", (invoice["documentType"], invoice["referenceNumber"]))
        sandbox_env.webhooks.wait_idle()
    resources, instance = defs().resources, dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance) as context:
        [request] = visma_webhook_sensor(context).run_requests
    assert request.partition_key == dg.MultiPartitionKey({"company": COMPANY, "month": MONTH})

    job = defs().resolve_job_def(request.job_name)
    assert job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=request.partition_key,
        asset_selection=request.asset_selection, run_config=request.run_config,
    ).success
    with state.db().connect() as conn:
        assert stored_key not in keys_for(conn, COMPANY, "supplier_invoices", period="202503")
        assert stored_key in keys_for(conn, COMPANY, "supplier_invoices", period="202503", include_deleted=True)
    with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance, cursor=None) as context:
        assert not visma_webhook_sensor(context).run_requests  # the notification was handled


def test_the_nightly_run_finds_records_deleted_in_open_periods_and_reads_closed_ones_as_deltas(sandbox_env):
    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.state import keys_for
    from visma_tableau_pipeline.visma.plan import sync_all

    settings, state = get_settings(), defs().resources["state"]
    sync_all(settings, resolved_companies(settings)[:1], state.db())
    invoices = list(sandbox_env.records(COMPANY, "supplier_invoices"))
    gone = {period: next(r for r in invoices if r["financialPeriod"] == period) for period in ("202503", "202610")}
    for record in gone.values():  # 2025-03 is closed in the sandbox, 2026-10 still open
        sandbox_env.delete(COMPANY, "supplier_invoices", (record["documentType"], record["referenceNumber"]))

    job = defs().resolve_job_def(defs().resolve_schedule_def("nightly_period_entities").job_name)
    invoices_key = dg.AssetKey(["visma", "supplier_invoices"])
    for month in ("2025-03-01", "2026-10-01"):
        assert job.execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), asset_selection=[invoices_key],
            partition_key=dg.MultiPartitionKey({"company": COMPANY, "month": month}),
            run_config={"ops": {"visma__supplier_invoices": {"config": {"open_periods_in_full": True}}}},
        ).success
    with state.db().connect() as conn:
        live = {period: keys_for(conn, COMPANY, "supplier_invoices", period=period) for period in gone}
    key = {period: f"{r['documentType']}|{r['referenceNumber']}" for period, r in gone.items()}
    assert key["202610"] not in live["202610"], "an open period is reconciled every night"
    assert key["202503"] in live["202503"], "a closed period waits for the weekly full read"


def test_tableau_webhooks_reach_the_data_source_asset_and_a_deleted_one_is_published_again(sandbox_env, tableau_env):
    import tableauserverclient as TSC

    from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
    from visma_tableau_pipeline.defs.tableau.webhooks import tableau_webhook_sensor
    from visma_tableau_pipeline.marts.registry import mart_table
    from visma_tableau_pipeline.sandbox.server import ServerThread
    from visma_tableau_pipeline.webhook_receiver import build_receiver_app

    state, token = defs().resources["state"], "tableau-webhook-token-for-the-tests-0123456789"
    instance = dg.DagsterInstance.ephemeral()
    mart, published = mart_asset_key(mart_table("suppliers")), tableau_asset_key("suppliers")
    assert defs().resolve_implicit_job_def_def_for_assets([mart, published]).execute_in_process(
        instance=instance, asset_selection=[mart, published]).success
    datasource_id = next(e for e in instance.get_latest_materialization_event(published).asset_materialization
                         .metadata.items() if e[0] == "datasource_id")[1].value

    def tick() -> dg.SensorResult:
        with dg.build_sensor_context(resources={"state": state}, definitions=defs(), instance=instance) as context:
            return tableau_webhook_sensor(context)

    app = build_receiver_app(state.db(), visma_secret=None, tableau_token=token, tenant_companies={})
    env = tableau_env.settings_env()
    with ServerThread(app) as receiver:
        server = TSC.Server(env["TABLEAU_SERVER_URL"], use_server_version=True)
        server.auth.sign_in(TSC.PersonalAccessTokenAuth(env["TABLEAU_PAT_NAME"], env["TABLEAU_PAT_SECRET"],
                                                        site_id=env["TABLEAU_SITE"]))
        for event in ("datasource-refresh-failed", "datasource-refresh-succeeded", "datasource-deleted"):
            hook = TSC.WebhookItem()
            hook.name, hook.url, hook.event = event, f"{receiver}/webhooks/tableau/{token}", event
            server.webhooks.create(hook)
        # The sandbox refreshes without failing; Tableau's delivery of a failure is sent as it would be
        tableau_env.state.webhooks.fire("DatasourceRefreshFailed", "suppliers", datasource_id)
        tableau_env.wait_for_webhooks()
        failed = tick()
        [check] = [e for e in failed.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        assert (check.asset_key, check.check_name, check.passed) == (published, "tableau_refresh", False)
        assert "DatasourceRefreshFailed" in check.description and "suppliers" in check.description
        assert any(isinstance(e, dg.AssetObservation) and e.asset_key == published for e in failed.asset_events)
        assert not failed.run_requests

        server.datasources.delete(datasource_id)
        tableau_env.wait_for_webhooks()
        deleted = tick()
        [request] = deleted.run_requests
        assert request.asset_selection == [published]
        assert tick().skip_reason  # handled once: the next tick has nothing to do

    result = defs().resolve_implicit_job_def_def_for_assets([published]).execute_in_process(
        instance=instance, asset_selection=request.asset_selection)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["mode"].value == "create" and metadata["datasource_id"].value != datasource_id
    assert tableau_env.datasource_path("suppliers").exists()
    refresh = next(e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
                   and e.event_specific_data.check_name == "tableau_refresh")
    assert refresh.passed, "the republished data source has had no refresh yet"


def test_entitlements_are_checked_against_visma_and_tableau_and_published(tableau_env, tmp_path, monkeypatch):
    from visma_tableau_pipeline.defs.tableau.entitlements import (
        DIRECTORY_KEY,
        ENTITLEMENTS_ASSET,
    )
    from visma_tableau_pipeline.marts.registry import mart_table

    masters = [mart_asset_key(mart_table(n)) for n in ("customers", "suppliers", "dimensions")]
    published = dg.AssetKey(["tableau", "entitlements"])
    selection = [*masters, DIRECTORY_KEY, ENTITLEMENTS_ASSET, published]
    instance = dg.DagsterInstance.ephemeral()
    job = defs().resolve_implicit_job_def_def_for_assets(selection)
    result = job.execute_in_process(instance=instance, asset_selection=selection)
    assert result.success
    checks = {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["entitlements_resolve"].passed
    stored = frame_from_hyper(tableau_env.datasource_path("entitlements"))
    assert {"Finance", "analyst"} <= set(stored["principal_name"])

    bad = tmp_path / "bad.yaml"
    bad.write_text("entitlements:\n  - {group: Auditors, company: nordic-no, customers: ['99999']}\n", encoding="utf-8")
    monkeypatch.setenv("VTP_ENTITLEMENTS", str(bad))
    get_settings.cache_clear()  # the definitions load again with the new file, as Dagster reloads them
    job = defs().resolve_implicit_job_def_def_for_assets(selection)
    result = job.execute_in_process(instance=instance, asset_selection=[ENTITLEMENTS_ASSET], raise_on_error=False)
    check = next(e.event_specific_data for e in result.all_events
                 if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "entitlements_resolve")
    assert not check.passed
    assert "Auditors" in check.description and "99999" in check.description


def test_without_tableau_a_data_source_is_skipped_with_the_reason_in_the_run_log(sandbox_env):
    """No `published false` green materialization: the data source asset does not materialize."""
    from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
    from visma_tableau_pipeline.marts.registry import mart_table

    instance = dg.DagsterInstance.ephemeral()
    sync_invoice_month(instance)
    mart, data_source = mart_asset_key(mart_table("ap_invoices")), tableau_asset_key("ap_invoices")
    result = defs().resolve_implicit_job_def_def_for_assets([mart, data_source]).execute_in_process(
        instance=instance, asset_selection=[mart, data_source])
    assert result.success
    assert instance.get_latest_materialization_event(mart) is not None
    assert instance.get_latest_materialization_event(data_source) is None
    skipped = [entry.user_message for entry in instance.all_logs(result.run_id)
               if "skipped, no Tableau is configured" in entry.user_message]
    assert skipped == [f"ap_invoices: skipped, no Tableau is configured (TABLEAU_SERVER_URL, or tableau: in "
                       f"VTP_CONFIG); the extract {get_settings().extracts_dir / 'ap_invoices.hyper'} is "
                       "written, nothing is published."]


def test_the_run_id_of_a_data_source_s_ledger_metadata_is_the_one_vtp_audit_run_knows(sandbox_env, tableau_env):
    """The `ledger` metadata of a materialization names `vtp audit run <Dagster run id>`; that
    command, as written, lists what the run delivered: a create, then an overwrite of the same rows."""
    import shlex

    from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
    from visma_tableau_pipeline.marts.registry import mart_table
    from visma_tableau_pipeline_tests.cli_support import vtp

    instance = dg.DagsterInstance.ephemeral()
    mart, data_source = mart_asset_key(mart_table("suppliers")), tableau_asset_key("suppliers")
    job = defs().resolve_implicit_job_def_def_for_assets([mart, data_source])
    suppliers = sum(1 for c in ("nordic-no", "nordic-se") for _ in sandbox_env.records(c, "suppliers"))
    overwrite = {"ops": {"tableau__suppliers": {"config": {"full": True}}}}
    for run_config, action in (({}, "insert"), (overwrite, "resend")):
        result = job.execute_in_process(instance=instance, asset_selection=[mart, data_source], run_config=run_config)
        metadata = instance.get_latest_materialization_event(data_source).asset_materialization.metadata
        command = shlex.split(metadata["ledger"].value.strip("`"))
        assert command == ["vtp", "audit", "run", result.run_id]
        audit = vtp(*command[1:])
        assert audit.exit_code == 0, audit.output
        assert audit.output.split() == ["suppliers", action, str(suppliers)]


def queue(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.DagsterRun:
    """The run the daemon would create for a sensor's request, not started yet (as while it waits for
    the `visma` pool)."""
    assert request.job_name, "the Visma sensors name their job"
    job = defs().resolve_job_def(request.job_name)
    tags = {**request.tags, **({"dagster/partition": str(request.partition_key)} if request.partition_key else {})}
    return instance.create_run_for_job(job, run_config=request.run_config, tags=tags,
                                       asset_selection=set(request.asset_selection or ()),
                                       status=dg.DagsterRunStatus.NOT_STARTED)


def test_what_one_visma_sensor_requested_the_other_does_not_request_again(sandbox_env):
    """Webhook sensor, then polling sensor, then the other way round, on one instance: each change
    is read by one run, and a tick's changes of a company by one run over their months."""
    from datetime import UTC

    from visma_tableau_pipeline.companies import resolved_companies
    from visma_tableau_pipeline.state import add_notification
    from visma_tableau_pipeline.visma.plan import sync_all

    visma_polling_sensor = defs().resolve_sensor_def("visma_polling_sensor")
    visma_webhook_sensor = defs().resolve_sensor_def("visma_webhook_sensor")
    settings, state, instance = get_settings(), defs().resources["state"], dg.DagsterInstance.ephemeral()
    sync_all(settings, resolved_companies(settings)[:1], state.db())
    resources = defs().resources
    invoices = list(sandbox_env.records(COMPANY, "supplier_invoices"))
    invoices_key = dg.AssetKey(["visma", "supplier_invoices"])

    def tick(sensor: dg.SensorDefinition, cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(resources=resources, definitions=defs(), instance=instance,
                                     cursor=cursor) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        return result

    def change(period: str) -> None:
        record = next(r for r in invoices if r["financialPeriod"] == period)
        sandbox_env.modify(COMPANY, "supplier_invoices", (record["documentType"], record["referenceNumber"]))

    def notify(notification_id: str) -> None:
        """What the receiver stores for Visma's notification of a change."""
        with state.db().transaction() as conn:
            add_notification(conn, "visma", notification_id, COMPANY, "supplier_invoices", None, "{}",
                             datetime.now(UTC))

    polled = tick(visma_polling_sensor, None)  # the polling sensor's cursor: before the changes
    change("202503")
    change("202610")
    notify("n-1")
    hooked = tick(visma_webhook_sensor, None)
    [request] = hooked.run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) \
        == (f"{COMPANY}|2025-03-01", f"{COMPANY}|2026-10-01")
    queue(instance, request)
    polled = tick(visma_polling_sensor, polled.cursor)
    # the sandbox posts an invoice to the ledger too: polling reads those entities, not the invoices
    assert all(invoices_key not in (r.asset_selection or ()) for r in polled.run_requests), \
        "read twice: the webhook sensor's queued run covers these changes"
    for ledger_run in polled.run_requests:
        queue(instance, ledger_run)

    # the other way round: polling sees a change first, its notification arrives later
    change("202506")
    [request] = [r for r in tick(visma_polling_sensor, polled.cursor).run_requests if invoices_key in r.asset_selection]
    assert request.partition_key == dg.MultiPartitionKey({"company": COMPANY, "month": "2025-06-01"})
    queue(instance, request)
    notify("n-2")
    assert not tick(visma_webhook_sensor, hooked.cursor).run_requests, \
        "read twice: the polling sensor's queued run covers this change"


def test_a_table_follows_an_entity_run_that_ended_while_another_is_still_reading(sandbox_env):
    """A stream of change runs keeps some entity partition in progress nearly always, and months
    no financial period covers are never read; a table waits for neither, yet is built again once
    the read still running ends."""
    from visma_tableau_pipeline.defs.tableau.assets import tableau_asset_key
    from visma_tableau_pipeline.marts.registry import mart_table

    instance, graph = dg.DagsterInstance.ephemeral(), defs().resolve_asset_graph()
    table, published = mart_asset_key(mart_table("ap_invoices")), tableau_asset_key("ap_invoices")
    invoices, selected = dg.AssetKey(["visma", "supplier_invoices"]), dg.AssetSelection.assets(table, published)

    def read(key: dg.AssetKey, partition: str | None = None) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))

    for parent in graph.get(table).parent_keys:  # the first night: every month a period covers read
        for partition in graph.get(parent).partitions_def.get_partition_keys():
            if partition.startswith("nordic-se|2025-") and partition[-5:-3] <= "06":
                continue  # nordic-se's fiscal years start in July 2025: never a partition of nothing
            read(parent, partition)
    evaluation = dg.evaluate_automation_conditions(defs=defs(), instance=instance, asset_selection=selected)

    march, october = (dg.MultiPartitionKey({"company": COMPANY, "month": m}) for m in (MONTH, "2026-10-01"))
    reading = instance.create_run_for_job(  # a later change's run, still reading October
        defs().resolve_job_def("visma_period_entities"), asset_selection={invoices},
        tags={"dagster/partition": str(october)}, status=dg.DagsterRunStatus.STARTED)
    read(invoices, str(march))  # an earlier change's run ended
    evaluation = dg.evaluate_automation_conditions(defs=defs(), instance=instance, asset_selection=selected,
                                                   cursor=evaluation.cursor)
    assert evaluation.get_requested_partitions(table) == {None}, "the table waited for an unrelated read"

    read(table)  # built, its checks passed: published while October is still being read
    for check in graph.asset_check_keys:
        if check.asset_key == table:
            instance.report_runless_asset_event(dg.AssetCheckEvaluation(asset_key=table, check_name=check.name,
                                                                        passed=True))
    evaluation = dg.evaluate_automation_conditions(defs=defs(), instance=instance, asset_selection=selected,
                                                   cursor=evaluation.cursor)
    assert (evaluation.get_requested_partitions(table), evaluation.get_requested_partitions(published)) \
        == (set(), {None}), "built once per update, then published"
    read(invoices, str(october))
    instance.report_run_canceled(reading)  # ended: its read is the update above
    evaluation = dg.evaluate_automation_conditions(defs=defs(), instance=instance, asset_selection=selected,
                                                   cursor=evaluation.cursor)
    assert evaluation.get_requested_partitions(table) == {None}, "the read that was running is not in the table"
