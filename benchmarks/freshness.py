"""Freshness: how long a change made in Visma takes to be visible in Tableau, everything running.

Issue 11, part 6. Target: p95 under 60 s on the webhook path.

Every part runs as a user runs it, each in its own process: `vtp sandbox` (the Visma and Tableau
sandboxes), `dagster-daemon run -w workspace.yaml` with a DAGSTER_HOME of its own (a copy of the
repository's dagster.yaml: the default sensors, schedules and the automation-condition sensor,
four concurrent runs, pools of one) and, on the webhook path, `vtp webhooks serve` with the Visma
sandbox sending its notifications there.

One deployment, in a temporary folder, serves both paths:
1. the first night: the daemon starts, then master data and every month since VTP_FIRST_MONTH
   of both companies are materialized into its instance (as the nightly schedules do); its
   automation-condition sensor builds every dashboard table and publishes it to Tableau;
2. per path, once no run has been active for longer than one automation tick, `--changes`
   supplier invoices (drawn, seeded, from the published `ap_invoices` rows of the latest six
   periods: the invoices an AP clerk edits; the same ones on each path) get a new description through
   the Visma sandbox's admin API, in bursts of `--burst` changes 2 s apart, a burst every
   `--spacing` seconds. A description is the change because it moves no amount: no blocking
   accounting check (AP subledger against the GL control account) can hold an edit back, so
   every latency is the pipeline's own;
3. the benchmark reads the published data source back (the .hyper downloaded through the
   Tableau REST API, signed in with the sandbox's Connected App so as not to end the pipeline's
   PAT session, read with the Hyper API) every `--poll` seconds, and records when each changed
   row shows its new description. A change not seen within `--timeout` seconds never arrived.

Paths, measured in the order given: `polling` (no receiver, no webhook subscription: the polling
sensor alone, at its interval) and `webhook` (the receiver running, the Visma sandbox notifying
it: the webhook sensor reacts; polling goes on, as in a deployment). The daemon's run records
then say where each change's time went, stage by stage.

    .venv/bin/python benchmarks/freshness.py [--changes 50] [--paths polling webhook]
    .venv/bin/python benchmarks/freshness.py --changes 5 --paths webhook   # a quick check (~5 min)

Every process it starts is stopped (its whole process group) on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
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

log = logging.getLogger("freshness")

TABLE = "ap_invoices"
ENTITY = "supplier_invoices"
WEBHOOK_SECRET = "freshness-benchmark-webhook-secret"
TENANT_ADMIN = "admin"  # the Tableau sandbox's site administrator, whom the Connected App acts as
RECENT_PERIODS = 6  # changes are drawn from invoices of the latest financial periods
BURST_GAP_S = 2.0  # between two changes of one burst
AUTOMATION_TICK_S = 30  # AutomationConditionSensorDefinition's default interval
SENSOR_RUN_TAG = "dagster/sensor_name"
RANGE_START_TAG = "dagster/asset_partition_range_start"  # "company|YYYY-MM-01"
FIRST_AUTOMATION_TICK = "Finished auto-materialization tick for automation_condition_sensor"


# -- the deployment ---------------------------------------------------------------------------


def bootstrap() -> None:
    """Child process: the first night's runs, materialized into DAGSTER_HOME's instance.

    Dashboard tables follow the entities by their automation condition: a deployment's first
    night (or a backfill) is what fills them, so the benchmark starts from there.
    """
    import dagster as dg

    from visma_tableau_pipeline.definitions import defs
    from visma_tableau_pipeline.defs.visma.jobs import master_data_job, month_range_tags, period_entities_job
    from visma_tableau_pipeline.settings import get_settings
    from visma_tableau_pipeline.visma.periods import covered_months
    from visma_tableau_pipeline.visma.plan import stored_periods

    settings = get_settings()
    with dg.DagsterInstance.get() as instance:
        for company in settings.companies:
            master = defs().get_job_def(master_data_job.name).execute_in_process(
                instance=instance, partition_key=company.company_id)
            # the months its financial periods cover, as the nightly schedule asks for them
            covered = covered_months(stored_periods(settings.open_state(), company.company_id),
                                     settings.first_month, date.today())
            if not (master.success and covered):
                raise SystemExit(f"the first night's master data of {company.company_id} failed")
            periods = defs().get_job_def(period_entities_job.name).execute_in_process(
                instance=instance, tags=month_range_tags(company.company_id, covered))
            if not periods.success:
                raise SystemExit(f"the first night's runs of {company.company_id} failed")


def start_pipeline(stack: Stack, processes: Processes, timeout_s: float) -> None:
    """The daemon, then the first night's entity runs.

    The daemon goes first: `AutomationCondition.eager()` counts an asset as handled at the
    automation sensor's first evaluation, so dashboard tables follow only entity runs that end
    after it, as in a deployment whose daemon runs before its first night.
    """
    daemon_log = processes.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], stack.env)
    wait_for("the automation sensor's first evaluation",
              lambda: FIRST_AUTOMATION_TICK in daemon_log.read_text(errors="replace"), timeout_s, processes)
    started = time.monotonic()
    with (stack.root / "bootstrap.log").open("wb") as output:
        result = subprocess.run([sys.executable, __file__, "_bootstrap"], env=stack.env, cwd=REPOSITORY,
                                stdout=output, stderr=subprocess.STDOUT)
    if result.returncode:
        raise RuntimeError(f"the first night's runs failed; see {stack.root / 'bootstrap.log'}")
    log.info("first night's entity runs: %.0f s", time.monotonic() - started)


def set_webhooks(stack: Stack, on: bool, processes: Processes) -> None:
    """Switch the webhook path on (the receiver running, Visma's subscription pointing at it) or
    off (the subscription removed, the receiver stopped)."""
    if not on:
        httpx.put(f"{stack.visma_url}/_sandbox/webhook", timeout=10, json={"url": None}).raise_for_status()
        processes.stop("receiver")
        return
    port = free_port()
    receiver_env = {**stack.env, "VTP_VISMA_WEBHOOK_SECRET": WEBHOOK_SECRET}
    processes.start("receiver", [str(BIN / "vtp"), "webhooks", "serve", "--port", str(port)], receiver_env)
    receiver = f"http://127.0.0.1:{port}"
    wait_for("the webhook receiver's start", lambda: answers(f"{receiver}/healthz"), 60, processes)
    httpx.put(f"{stack.visma_url}/_sandbox/webhook", timeout=10,
              json={"url": f"{receiver}/webhooks/visma", "secret": WEBHOOK_SECRET}).raise_for_status()


# -- Tableau, read back ------------------------------------------------------------------------


class PublishedTable:
    """The rows of one published data source, downloaded through the Tableau REST API."""

    def __init__(self, stack: Stack, name: str) -> None:
        from tableauhyperapi import HyperProcess, Telemetry

        from visma_tableau_pipeline.sandbox.tableau.sandbox import DEMO_CONNECTED_APP
        from visma_tableau_pipeline.settings import TableauSettings
        from visma_tableau_pipeline.tableau.session import TableauSession

        settings = TableauSettings(
            server_url=stack.tableau_url, site=stack.env["TABLEAU_SITE"],
            connected_app_client_id=DEMO_CONNECTED_APP.client_id,
            connected_app_secret_id=DEMO_CONNECTED_APP.secret_id,
            connected_app_secret_value=DEMO_CONNECTED_APP.secret_value, username=TENANT_ADMIN,
        )
        self._name = name
        self._folder = stack.root / "read-back"
        self._folder.mkdir()
        self._session = TableauSession(settings)
        self._hyper = HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                                   parameters={"log_dir": str(self._folder)})
        self._datasource_id: str | None = None

    def close(self) -> None:
        self._session.close()
        self._hyper.close()

    def rows(self, columns: list[str]) -> list[tuple] | None:
        """The data source's rows (those columns), or None while it is not published."""
        import tableauhyperapi as hyper
        import tableauserverclient as TSC

        if self._datasource_id is None:
            found = self._session.call(lambda server: [d.id for d in TSC.Pager(server.datasources)
                                                       if d.name == self._name])
            if not found:
                return None
            self._datasource_id = found[0]
        path = self._session.call(lambda server: server.datasources.download(
            self._datasource_id, filepath=str(self._folder / self._name)))
        selected = ", ".join(hyper.escape_name(column) for column in columns)
        with hyper.Connection(self._hyper.endpoint, path) as connection:
            return [tuple(row) for row in connection.execute_list_query(
                f'SELECT {selected} FROM "Extract"."Extract"')]


# -- changes -----------------------------------------------------------------------------------

KEY_COLUMNS = ["company_id", "document_type", "reference_number"]


@dataclass
class Change:
    """One edit made in Visma and when its row showed it in Tableau."""

    number: int
    key: tuple[str, str, str]  # company, document type, reference number
    description: str
    made_at: float = 0.0  # epoch seconds, just before the sandbox was asked
    seen_at: float | None = None

    @property
    def latency_s(self) -> float | None:
        return None if self.seen_at is None else self.seen_at - self.made_at


def pick_invoices(rows: list[tuple], count: int, seed: int) -> list[tuple[str, str, str]]:
    """`count` distinct invoices of the latest periods (rows: key columns, then financial period)."""
    periods = sorted({row[3] for row in rows if row[3]}, reverse=True)[:RECENT_PERIODS]
    recent = sorted({tuple(row[:3]) for row in rows if row[3] in periods})
    if len(recent) < count:
        raise RuntimeError(f"only {len(recent)} invoices in periods {periods}; ask for fewer changes")
    return random.Random(seed).sample(recent, count)


def make_changes(stack: Stack, changes: list[Change], burst: int, spacing_s: float, table: PublishedTable,
                 poll_s: float, timeout_s: float, processes: Processes) -> None:
    """Make the changes on their schedule while watching Tableau, until each is seen or timed out."""
    first = time.time()
    due = [first + (c.number // burst) * spacing_s + (c.number % burst) * BURST_GAP_S for c in changes]
    pending = list(changes)
    waiting = list(changes)
    next_poll = first
    while waiting:
        now = time.time()
        while pending and due[pending[0].number] <= now:
            change = pending.pop(0)
            change.made_at = time.time()
            httpx.post(f"{stack.visma_url}/_sandbox/modify", timeout=30, json={
                "company_id": change.key[0], "entity": ENTITY, "key": list(change.key[1:]),
                "changes": {"description": change.description},
            }).raise_for_status()
            log.info("change %d: %s %s description set", change.number + 1, change.key[0], "/".join(change.key[1:]))
        if now >= next_poll and any(c.made_at for c in waiting):
            next_poll = now + poll_s
            processes.check_alive()
            rows = table.rows([*KEY_COLUMNS, "description"]) or []
            seen_at = time.time()
            shown = {tuple(row[:3]): row[3] for row in rows}
            for change in [c for c in waiting if c.made_at]:
                if shown.get(change.key) == change.description:
                    change.seen_at = seen_at
                    waiting.remove(change)
                    log.info("change %d seen after %.1f s", change.number + 1, change.latency_s)
                elif seen_at - change.made_at > timeout_s:
                    waiting.remove(change)
                    log.warning("change %d not seen within %.0f s", change.number + 1, timeout_s)
        time.sleep(0.2)


# -- where the time went -----------------------------------------------------------------------

STAGES = [
    "change → entity run requested (webhook or poll, sensor tick)",
    "entity run requested → its read starts (queue, launch, step process)",
    "entity read",
    "entity read → entity run ends (its checks)",
    "entity run ends → table run requested (automation tick)",
    "table run requested → publish starts (queue, launch, tables, checks)",
    "publish to Tableau",
    "publish ends → seen by the benchmark",
]
READ_STEP = f"visma__{ENTITY}"
PUBLISH_STEP = f"tableau__{TABLE}"


@dataclass
class RunTimes:
    """One run's times (epoch seconds), what launched it, and its steps' (start, end)."""

    sensor: str
    company: str
    created: float
    started: float | None
    ended: float | None
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def step_work_s(self) -> float:
        return sum(end - start for start, end in self.steps.values())


def run_times(dagster_home: Path, since: float = 0.0) -> list[RunTimes]:
    """The instance's runs created since `since`, with their steps' times from the event log."""
    import dagster as dg

    runs = []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for record in instance.get_run_records():
            if record.create_timestamp.timestamp() < since:
                continue
            run = record.dagster_run
            steps = {stats.step_key: (stats.start_time, stats.end_time)
                     for stats in instance.get_run_step_stats(run.run_id)
                     if stats.start_time is not None and stats.end_time is not None}
            runs.append(RunTimes(run.tags.get(SENSOR_RUN_TAG, ""), _company_of(run.tags),
                                 record.create_timestamp.timestamp(), record.start_time, record.end_time, steps))
    return sorted(runs, key=lambda r: r.created)


def _company_of(tags: Mapping[str, str]) -> str:
    """The company a run reads: its partition's, or its range's (a run over several months)."""
    return tags.get("dagster/partition/company") or tags.get(RANGE_START_TAG, "").partition("|")[0]


def stages_of(change: Change, runs: list[RunTimes]) -> list[float] | None:
    """The change's latency cut at its runs' times, or None when they cannot be told apart.

    The delivering run is the one whose publish of the table ended last before the change was
    seen; the entity run the last one of the change's company, made after the change, that ended
    before the delivering run was requested.
    """
    if change.seen_at is None:
        return None
    seen_at = change.seen_at
    publishes = [r for r in runs if PUBLISH_STEP in r.steps and r.steps[PUBLISH_STEP][1] <= seen_at]
    if not publishes:
        return None
    table_run = max(publishes, key=lambda r: r.steps[PUBLISH_STEP][1])
    reads = [r for r in runs if r.sensor.startswith("visma_") and r.company == change.key[0] and READ_STEP in r.steps
             and r.created >= change.made_at and r.ended is not None and r.ended <= table_run.created]
    if not reads:
        return None
    entity_run = max(reads, key=lambda r: r.ended or 0.0)
    marks = [change.made_at, entity_run.created, *entity_run.steps[READ_STEP], entity_run.ended,
             table_run.created, *table_run.steps[PUBLISH_STEP], seen_at]
    return [later - earlier for earlier, later in itertools.pairwise(marks)]


# -- the measurement, and the report -----------------------------------------------------------


@dataclass
class PathResult:
    path: str
    changes: list[Change]
    stages: list[list[float]]
    runs: list[RunTimes]


def measure(args: argparse.Namespace, workdir: Path) -> list[PathResult]:
    """Everything up once, then each path's changes made and watched; everything stopped."""
    processes = Processes(workdir)
    table: PublishedTable | None = None
    results = []
    try:
        stack = start_sandboxes(workdir, args.size, processes)
        start_pipeline(stack, processes, args.settle_timeout)
        table = PublishedTable(stack, TABLE)
        started = time.monotonic()
        rows = wait_for(f"the first publish of {TABLE}", lambda: table.rows([*KEY_COLUMNS, "financial_period"]),
                         args.settle_timeout, processes, every_s=5)
        keys = pick_invoices(rows, args.changes, args.seed)
        for path in args.paths:
            set_webhooks(stack, path == "webhook", processes)
            wait_for("the runs to settle", lambda: _settled(stack.dagster_home), args.settle_timeout, processes,
                      every_s=5)
            log.info("%s path: no run active for an automation tick, %.0f s after the %s", path,
                     time.monotonic() - started, "previous path" if results else "first night's entity runs")
            changes = [Change(n, key, f"freshness {path} #{n + 1}") for n, key in enumerate(keys)]
            measured_from = time.time()
            make_changes(stack, changes, args.burst, args.spacing, table, args.poll, args.timeout, processes)
            wait_for("the runs to end", lambda: not active_runs(stack.dagster_home), args.settle_timeout,
                      processes, every_s=5)
            runs = run_times(stack.dagster_home, since=measured_from)
            stages = [s for s in (stages_of(c, runs) for c in changes) if s is not None]
            results.append(PathResult(path, changes, stages, runs))
            started = time.monotonic()
    finally:
        if table is not None:
            table.close()
        processes.stop_all()
    return results


def _settled(dagster_home: Path) -> bool:
    """No run queued or running, and none ended within the last automation tick."""
    if active_runs(dagster_home):
        return False
    ended = [r.ended for r in run_times(dagster_home) if r.ended is not None]
    return bool(ended) and time.time() - max(ended) > AUTOMATION_TICK_S + 5


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a latency one of the changes actually had."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


def report(results: list[PathResult], args: argparse.Namespace) -> str:
    """The figures: latency per path, then the stages of the webhook path's latencies."""
    lines = [f"{args.changes} changes per path (description of a supplier invoice), bursts of "
             f"{args.burst} every {args.spacing:.0f} s, Tableau read every {args.poll:.0f} s, "
             f"timeout {args.timeout:.0f} s; sandbox size {args.size}; {os.cpu_count()} CPUs, "
             f"load {os.getloadavg()[0]:.1f}",
             "",
             "| path | changes | arrived | never arrived | p50 s | p95 s | max s |",
             "|:--|--:|--:|--:|--:|--:|--:|"]
    for result in results:
        latencies = [c.latency_s for c in result.changes if c.latency_s is not None]
        figures = (" | ".join(f"{f(latencies):.1f}" for f in (
            lambda v: _percentile(v, 0.5), lambda v: _percentile(v, 0.95), max)) if latencies else "- | - | -")
        lines.append(f"| {result.path} | {len(result.changes)} | {len(latencies)} | "
                     f"{len(result.changes) - len(latencies)} | {figures} |")
    for result in results:
        if not result.stages:
            continue
        lines += ["", f"Where the time went, {result.path} path ({len(result.stages)} changes traced to their runs):",
                  "", "| stage | p50 s | p95 s | max s |", "|:--|--:|--:|--:|"]
        for index, stage in enumerate(STAGES):
            values = [s[index] for s in result.stages]
            lines.append(f"| {stage} | {_percentile(values, 0.5):.1f} | {_percentile(values, 0.95):.1f} | "
                         f"{max(values):.1f} |")
        lines += ["", "| runs launched by | count | queued → started p50 s | run p50 s | its steps' work p50 s |",
                  "|:--|--:|--:|--:|--:|"]
        for sensor in sorted({r.sensor for r in result.runs}):
            runs = [r for r in result.runs if r.sensor == sensor and r.started is not None and r.ended is not None]
            if runs:
                lines.append(f"| {sensor or 'other'} | {len(runs)} | "
                             f"{statistics.median(r.started - r.created for r in runs):.1f} | "
                             f"{statistics.median(r.ended - r.started for r in runs):.1f} | "
                             f"{statistics.median(r.step_work_s for r in runs):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50, help="changes made in Visma per path")
    parser.add_argument("--paths", nargs="+", choices=["polling", "webhook"], default=["polling", "webhook"],
                        help="measured in this order, on one running deployment")
    parser.add_argument("--burst", type=int, default=5, help="changes per burst, 2 s apart")
    parser.add_argument("--spacing", type=float, default=60.0, help="seconds between the starts of bursts")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between reads of the Tableau data source")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds after which a change never arrived")
    parser.add_argument("--settle-timeout", type=float, default=900.0,
                        help="seconds allowed for the first night's tables to be published")
    parser.add_argument("--size", type=int, default=300, help="supplier invoices per demo company")
    parser.add_argument("--seed", type=int, default=11, help="draws the invoices to change")
    parser.add_argument("--workdir", type=Path,
                        help="keep every process's log, the instance and the state here (default: a "
                             "temporary folder, removed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for chatty in ("httpx", "TSC", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.getLogger("visma_tableau_pipeline").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    with contextlib.ExitStack() as cleanup:
        workdir = args.workdir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="vtp-freshness-")))
        results = measure(args, workdir)
    sys.stdout.write(report(results, args) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["_bootstrap"]:
        bootstrap()
    else:
        main()
