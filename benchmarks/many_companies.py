"""Many companies: an accounting office's small client companies, backfilled, then one night.

Issue 12, target 4: "a benchmark of 200 small sandbox companies backfilled and run nightly through
the Dagster daemon with the queued run coordinator on PostgreSQL: wall time, runs, failures".

Everything runs as a production deployment does (README, "Deploy" and "Scaling out"), each part
in its own process:
- PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth): two fresh databases, one for Dagster's
  storage, one for the state database (VTP_STATE_URL); both dropped at the end;
- `vtp sandbox --companies N` (the Visma sandbox serving N generated client companies besides the
  demo group, and the Tableau sandbox); a VTP_CONFIG file names the N client companies, as an
  accounting office's would (the demo group is served but not read);
- DAGSTER_HOME with `deploy/dagster.yaml` (PostgreSQL storage, the queued run coordinator: 8 runs,
  2 per company; pools of 1), `dagster instance concurrency set visma 4` as the README says;
- one code server (`dagster code-server start`), the webserver and the daemon, both reading it.

Phases, each timed until every run has ended and the automation has been quiet for two ticks:
1. the backfill: every Visma entity asset, all partitions (master data per company, every
   company × month since VTP_FIRST_MONTH), launched through the webserver's GraphQL API as the UI's
   "Materialize all" → "Backfill all partitions" does; the automation then builds the dashboard
   tables and publishes them to Tableau;
2. one night: the nightly schedules evaluated for their next tick and their run requests launched
   (the UI's "Test schedule" → "Launch all runs", what the daemon does at 02:00), and the automation
   that follows.

    .venv/bin/python benchmarks/many_companies.py                   # 200 companies
    .venv/bin/python benchmarks/many_companies.py --companies 10    # a quick check

Every process it starts is stopped (its whole process group) on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from deployment import (  # benchmarks/deployment.py
    BIN,
    REPOSITORY,
    Processes,
    Stack,
    active_runs,
    answers,
    exit_on_sigterm,
    free_port,
    start_sandboxes,
    wait_for,
)

log = logging.getLogger("many_companies")

PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
SECRET_VARIABLE = "VTP_SANDBOX_CLIENT_SECRET"  # the VTP_CONFIG file names it (`env:`), not the secret
FIRST_AUTOMATION_TICK = "Finished auto-materialization tick for automation_condition_sensor"
AUTOMATION_TICK_S = 15  # VTP_AUTOMATION_SENSOR_SECONDS' default
QUIET_S = 2 * AUTOMATION_TICK_S + 5  # no run for this long after the last one ended: the phase is over
# the nightly schedules and their jobs (a schedule's run requests name no job when it has one)
NIGHTLY_SCHEDULES = {"nightly_master_data": "visma_master_data", "nightly_period_entities": "visma_period_entities"}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


# -- PostgreSQL ---------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_databases(*names: str) -> Iterator[None]:
    """Create the databases (none may exist), and drop them on the way out."""
    import psycopg2

    def execute(statement: str) -> None:
        connection = psycopg2.connect(dbname="postgres", **PG)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    created = []
    try:
        for name in names:
            execute(f'CREATE DATABASE "{name}"')
            created.append(name)
        yield
    finally:
        for name in created:
            execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log.info("dropped database %s", name)


# -- the deployment -----------------------------------------------------------------------------


@dataclass
class Deployment:
    stack: Stack
    graphql_url: str
    location: str
    repository: str


def write_config(path: Path, visma_url: str, count: int) -> None:
    """The accounting office's VTP_CONFIG: its N client companies, the secret by reference."""
    from visma_tableau_pipeline.settings import SANDBOX_CLIENT_COMPANY_PREFIX, sandbox_companies

    companies = [c for c in sandbox_companies(visma_url, count)
                 if c.company_id.startswith(SANDBOX_CLIENT_COMPANY_PREFIX)]
    path.write_text(yaml.safe_dump({"companies": [
        {"company_id": c.company_id, "client_id": c.client_id, "client_secret": f"env:{SECRET_VARIABLE}",
         "tenant_id": c.tenant_id, "api_url": c.api_url, "token_url": c.token_url}
        for c in companies]}, sort_keys=False))


def start(args: argparse.Namespace, root: Path, databases: tuple[str, str], processes: Processes) -> Deployment:
    """Sandboxes, configuration, pools, code server, webserver, daemon: a deployment, ready."""
    from visma_tableau_pipeline.settings import SANDBOX_CLIENT_SECRET

    stack = start_sandboxes(root, args.demo_size, processes, instance_config=REPOSITORY / "deploy" / "dagster.yaml",
                            sandbox_options=["--companies", str(args.companies),
                                             "--company-size", str(args.company_size)])
    dagster_db, state_db = databases
    config = root / "companies.yaml"
    write_config(config, stack.visma_url, args.companies)
    for name in ("VTP_SANDBOX_URL", "VTP_SANDBOX_COMPANIES"):  # the companies come from VTP_CONFIG
        stack.env.pop(name, None)
    pg = {"DAGSTER_PG_HOST": PG["host"], "DAGSTER_PG_PORT": PG["port"], "DAGSTER_PG_USER": PG["user"],
          "DAGSTER_PG_PASSWORD": "trust", "DAGSTER_PG_DB": dagster_db}
    stack.env.update(pg)
    stack.env.update({
        "VTP_CONFIG": str(config),
        SECRET_VARIABLE: SANDBOX_CLIENT_SECRET,
        "VTP_STATE_URL": f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{state_db}",
    })
    os.environ.update(pg)  # this process reads the instance too
    subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", "visma", str(args.visma_pool)],
                   env=stack.env, cwd=REPOSITORY, check=True, capture_output=True)

    code_port = free_port()
    workspace = root / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
        "host": "127.0.0.1", "port": code_port, "location_name": "visma_tableau_pipeline"}}]}))
    processes.start("code-server", [str(BIN / "dagster"), "code-server", "start", "-m",
                                    "visma_tableau_pipeline.definitions", "-h", "127.0.0.1", "-p", str(code_port)],
                    stack.env)
    wait_for("the code server", lambda: _healthy(code_port, stack.env), 600, processes, every_s=2)
    web_port = free_port()
    processes.start("webserver", [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1",
                                  "-p", str(web_port)], stack.env)
    url = f"http://127.0.0.1:{web_port}"
    wait_for("the webserver", lambda: answers(f"{url}/server_info"), 600, processes, every_s=2)
    daemon_log = processes.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], stack.env)
    # eager() counts what it has seen at its first evaluation as handled: the daemon goes first
    wait_for("the automation sensor's first evaluation",
             lambda: FIRST_AUTOMATION_TICK in daemon_log.read_text(errors="replace"), 900, processes, every_s=2)
    nodes = graphql(f"{url}/graphql", "{ repositoriesOrError { ... on RepositoryConnection { nodes { name "
                                      "location { name } } } ... on Error { message } } }")["repositoriesOrError"]
    node = nodes["nodes"][0]
    return Deployment(stack, f"{url}/graphql", node["location"]["name"], node["name"])


def _healthy(port: int, env: dict[str, str]) -> bool:
    return subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port), "-h", "127.0.0.1"],
                          env=env, capture_output=True).returncode == 0


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=900)
    if response.status_code != 200:
        raise RuntimeError(f"GraphQL answered {response.status_code}: {response.text[:2000]}")
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def _result(data: dict[str, Any], success: str) -> dict[str, Any]:
    """The mutation's result, or a RuntimeError with the message of the error it answered."""
    if data["__typename"] != success:
        raise RuntimeError(f"{data['__typename']}: {data.get('message', data)}")
    return data


# -- the phases ---------------------------------------------------------------------------------

BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

DRY_RUN = """
mutation DryRun($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick {
      timestamp
      evaluationResult { runRequests { runKey jobName runConfigYaml tags { key value } } skipReason error { message } }
    }
    ... on Error { message }
  }
}"""

LAUNCH = """
mutation Launch($params: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $params) {
    __typename
    ... on LaunchMultipleRunsResult {
      launchMultipleRunsResult { __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } }
    }
    ... on Error { message }
  }
}"""


def launch_backfill(deployment: Deployment) -> str:
    """Every Visma entity asset, all partitions: one backfill, as the UI launches it."""
    from visma_tableau_pipeline.defs.visma.assets import entity_asset_key
    from visma_tableau_pipeline.visma.catalogue import ENTITIES

    params = {"assetSelection": [{"path": entity_asset_key(e).path} for e in ENTITIES], "allPartitions": True,
              "title": "many companies: the first load"}
    data = graphql(deployment.graphql_url, BACKFILL, {"params": params})["launchPartitionBackfill"]
    return _result(data, "LaunchBackfillSuccess")["backfillId"]


def launch_night(deployment: Deployment) -> int:
    """The nightly schedules' next tick, evaluated, and every run it requests launched."""
    launched = 0
    now = time.time()
    for schedule, job in NIGHTLY_SCHEDULES.items():
        selector = {"repositoryLocationName": deployment.location, "repositoryName": deployment.repository,
                    "scheduleName": schedule}
        tick = _result(graphql(deployment.graphql_url, DRY_RUN, {"selector": selector, "timestamp": now})[
            "scheduleDryRun"], "DryRunInstigationTick")
        evaluation = tick["evaluationResult"]
        if evaluation["error"]:
            raise RuntimeError(f"{schedule}: {evaluation['error']['message']}")
        requests = evaluation["runRequests"] or []
        log.info("%s: its next tick requests %d runs", schedule, len(requests))
        params = [{
            "selector": {"repositoryLocationName": deployment.location, "repositoryName": deployment.repository,
                         "jobName": request["jobName"] or job},
            "runConfigData": yaml.safe_load(request["runConfigYaml"]) or {},
            "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in {
                **{tag["key"]: tag["value"] for tag in request["tags"]}, "dagster/schedule_name": schedule}.items()]},
        } for request in requests]
        for start_at in range(0, len(params), 50):
            result = _result(graphql(deployment.graphql_url, LAUNCH, {"params": params[start_at:start_at + 50]})[
                "launchMultipleRuns"], "LaunchMultipleRunsResult")
            refused = [r for r in result["launchMultipleRunsResult"] if r["__typename"] != "LaunchRunSuccess"]
            if refused:
                raise RuntimeError(f"{schedule}: {len(refused)} runs refused, the first: {refused[0]}")
            launched += len(result["launchMultipleRunsResult"])
    return launched


def backfill_status(dagster_home: Path, backfill_id: str) -> str:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        backfill = instance.get_backfill(backfill_id)
        return backfill.status.value if backfill else "MISSING"


def wait_until_quiet(stack: Stack, since: float, timeout_s: float, processes: Processes,
                     launched: bool = True) -> None:
    """Until no run is queued or running and none has ended within QUIET_S (the automation had
    two ticks to start the next table run)."""
    import dagster as dg

    def quiet() -> bool:
        if not launched or active_runs(stack.dagster_home):
            return False
        with dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance:
            records = instance.get_run_records(dg.RunsFilter(created_after=datetime.fromtimestamp(since, UTC)))
        ended = [r.end_time for r in records if r.end_time]
        return bool(ended) and time.time() - max(ended) > QUIET_S

    wait_for("the runs to end and the automation to go quiet", quiet, timeout_s, processes, every_s=10)


# -- the figures --------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    started: float
    visma_before: dict[str, dict[str, int]]
    visma_after: dict[str, dict[str, int]] = field(default_factory=dict)


def visma_requests(stack: Stack) -> dict[str, dict[str, int]]:
    """The Visma sandbox's authenticated requests and 429s, per company, so far."""
    return httpx.get(f"{stack.visma_url}/_sandbox/requests", timeout=30).json()


def _launched_by(tags: dict[str, str]) -> str:
    if "dagster/backfill" in tags:
        return "backfill"
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags or "dagster/automation_condition" in tags:
        return "automation (tables, Tableau)"
    return "other"


def _failure(instance: Any, run_id: str) -> str:
    """The first error of a failed run: its first failed blocking check's, else its first failed
    step's (the cause, when Dagster wrapped it), else the run's own."""
    import dagster as dg

    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data if record.dagster_event else None
        if evaluation is not None and not evaluation.passed:
            return (f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed: "
                    f"{(evaluation.description or '').strip()[:300]}")
    for record in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                     dg.DagsterEventType.RUN_FAILURE}):
        event = record.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        if error is not None:
            error = error.cause or error
            return f"{event.step_key or 'run'}: {error.cls_name}: {' '.join(error.message.split())[:300]}"
        if record.message:
            return f"run: {' '.join(record.message.split())[:300]}"
    return "no failure event"


def _kind(message: str) -> str:
    """A failure's kind: the check or step and the error, without numbers and company names."""
    return re.sub(r"client-\d+|\d+", "#", message)[:90]


def _max_concurrent(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def report(phase: Phase, dagster_home: Path) -> list[str]:
    """The phase's figures, as Markdown lines."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(dg.RunsFilter(created_after=datetime.fromtimestamp(phase.started, UTC)))
        failures = {r.dagster_run.run_id: _failure(instance, r.dagster_run.run_id) for r in records
                    if r.dagster_run.status == dg.DagsterRunStatus.FAILURE}
        rows_published = publishes = records_read = 0
        for record in records:
            seen = set()  # a run over months some period does not cover repeats its step's metadata per month
            for event in instance.all_logs(record.dagster_run.run_id,
                                           of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
                materialization = event.asset_materialization
                if materialization is None or materialization.asset_key in seen:
                    continue
                seen.add(materialization.asset_key)
                metadata = {k: v.value for k, v in materialization.metadata.items()}
                if materialization.asset_key.path[0] == "tableau":
                    publishes += 1
                    rows_published += int(metadata.get("rows_upserted", 0)) + int(metadata.get("rows_deleted", 0))
                elif materialization.asset_key.path[0] == "visma":
                    records_read += int(metadata.get("records_read", 0))
    ended = [r.end_time for r in records if r.end_time]
    wall_s = (max(ended) if ended else time.time()) - phase.started
    spans = [(r.start_time, r.end_time or time.time()) for r in records if r.start_time]
    queued = [r.start_time - r.create_timestamp.timestamp() for r in records if r.start_time]
    by_launcher = Counter(_launched_by(dict(r.dagster_run.tags)) for r in records)
    calls = sum(phase.visma_after["counts"].values()) - sum(phase.visma_before["counts"].values())
    throttled = (sum(phase.visma_after.get("throttled", {}).values())
                 - sum(phase.visma_before.get("throttled", {}).values()))
    lines = [
        f"### {phase.name}",
        "",
        "| figure | value |",
        "|:--|--:|",
        f"| wall time (launch → last run ended) | {wall_s / 60:.1f} min |",
        f"| runs | {len(records)} ({', '.join(f'{n} {k}' for k, n in sorted(by_launcher.items()))}) |",
        f"| runs failed | {len(failures)} |",
        f"| runs per minute | {len(records) / (wall_s / 60):.1f} |",
        f"| max concurrent runs | {_max_concurrent(spans)} |",
        f"| queued → started, p50 / max | {statistics.median(queued) if queued else 0:.0f} s / "
        f"{max(queued, default=0):.0f} s |",
        f"| run duration p50 / max | {statistics.median(e - s for s, e in spans) if spans else 0:.0f} s / "
        f"{max((e - s for s, e in spans), default=0):.0f} s |",
        f"| Visma requests / 429s | {calls:,} / {throttled:,} |",
        f"| Visma records read | {records_read:,} |",
        f"| Tableau publishes / rows sent | {publishes} / {rows_published:,} |",
    ]
    kinds: dict[str, list[str]] = {}
    for message in failures.values():
        kinds.setdefault(_kind(message), []).append(message)
    lines.extend(f"| failure ×{len(messages)} | {messages[0].replace('|', '/')} |" for messages in kinds.values())
    return lines


# -- main ---------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, root: Path) -> list[str]:
    processes = Processes(root)
    tag = f"vtp_many_{os.getpid()}"
    databases = (f"{tag}_dagster", f"{tag}_state")
    lines = [f"{args.companies} client companies of {args.company_size} supplier invoices each; "
             f"{os.cpu_count()} CPUs; visma pool {args.visma_pool}; deploy/dagster.yaml run queue", ""]
    with fresh_databases(*databases):
        try:
            started = time.monotonic()
            deployment = start(args, root, databases, processes)
            stack = deployment.stack
            log.info("deployment up in %.0f s", time.monotonic() - started)

            phase = Phase("backfill (first load)", time.time(), visma_requests(stack))
            backfill_id = launch_backfill(deployment)
            log.info("backfill %s launched", backfill_id)
            wait_for("the backfill's end", lambda: backfill_status(stack.dagster_home, backfill_id) in BACKFILL_DONE,
                     args.timeout, processes, every_s=10)
            status = backfill_status(stack.dagster_home, backfill_id)
            log.info("backfill %s: %s", backfill_id, status)
            wait_until_quiet(stack, phase.started, args.timeout, processes)
            phase.visma_after = visma_requests(stack)
            lines += [*report(phase, stack.dagster_home), f"| the backfill's status | {status} |", ""]
            sys.stderr.write("\n".join(lines) + "\n")

            phase = Phase("one night (nightly schedules)", time.time(), visma_requests(stack))
            log.info("night: %d runs launched", launch_night(deployment))
            wait_until_quiet(stack, phase.started, args.timeout, processes)
            phase.visma_after = visma_requests(stack)
            lines += report(phase, stack.dagster_home)
            lines += ["", f"load average at the end: {os.getloadavg()[0]:.1f}"]
        finally:
            processes.stop_all()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=200, help="generated client companies read")
    parser.add_argument("--company-size", type=int, default=40, help="supplier invoices per client company")
    parser.add_argument("--demo-size", type=int, default=20, help="supplier invoices of the demo group (not read)")
    parser.add_argument("--visma-pool", type=int, default=4, help="`dagster instance concurrency set visma N`")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed per phase")
    parser.add_argument("--workdir", type=Path,
                        help="keep every process's log, the instance's files and the extracts here (default: "
                             "a temporary folder, removed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    with contextlib.ExitStack() as cleanup:
        root = args.workdir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="vtp-many-")))
        root.mkdir(parents=True, exist_ok=True)
        lines = measure(args, root)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
