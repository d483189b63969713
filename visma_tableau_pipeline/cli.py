"""The `vtp` command: headless sync, checks of the real systems, the sandboxes, audit, secrets."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from datetime import date

import click

from visma_tableau_pipeline.settings import get_settings
from visma_tableau_pipeline.state import StateDB

log = logging.getLogger("vtp")

EXIT_HELD_BACK = 2  # `vtp sync` finished, but some records are held back (1: the run failed)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


class _Vtp(click.Group):
    """The `vtp` group: the one place where a failed command becomes one line and exit code 1.

    Commands raise the project's typed errors (or a library's) and never catch them for display;
    here each becomes a message that says what failed and what to do (`failures.explain`). The
    traceback is shown only with `-v`. Exits a command chooses itself (`sys.exit(2)`) pass through.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own ways to end: a usage error, ctx.exit(code), Ctrl-C
        except Exception as error:
            from visma_tableau_pipeline.failures import explain

            if ctx.params.get("verbose"):
                click.echo("".join(traceback.format_exception(error)), err=True, nl=False)
            command = " ".join(filter(None, ["vtp", ctx.invoked_subcommand]))
            raise click.ClickException(f"{command} failed: {explain(error)}") from error


@click.group(cls=_Vtp)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and tracebacks of failures.")
def main(verbose: bool) -> None:
    """Keeps Tableau dashboards current with Visma.net ERP."""
    _configure_logging(verbose)


@main.command()
@click.option("--full", is_flag=True, help="Re-read every window and find records deleted in Visma.")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The aging snapshot date (default today).")
def sync(full: bool, as_of) -> None:
    """One headless sync: the same work the nightly schedule launches."""
    from visma_tableau_pipeline.pipeline import run_pipeline

    outcome = run_pipeline(get_settings(), full=full, as_of=as_of.date() if as_of else date.today())
    click.echo(outcome.summary())
    if outcome.held:
        sys.exit(EXIT_HELD_BACK)


@main.command()
def check() -> None:
    """Ping your real systems: a Visma token and one small read per company, a Tableau sign-in."""
    from visma_tableau_pipeline.checks import run_checks

    results = run_checks(get_settings())
    for result in results:
        click.echo(f"{'ok ' if result.ok else 'FAIL'} {result.target}: {result.message}")
    if not all(result.ok for result in results):
        sys.exit(1)


@main.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--visma-port", default=8765, show_default=True)
@click.option("--tableau-port", default=8766, show_default=True)
@click.option("--size", default=300, show_default=True, help="Supplier invoices per demo company.")
@click.option("--companies", "client_companies", default=0, show_default=True, envvar="VTP_SANDBOX_COMPANIES",
              type=click.IntRange(0, 9999),
              help="Small client companies (client-001, ...) served besides the demo group (VTP_SANDBOX_COMPANIES).")
@click.option("--company-size", "client_size", default=40, show_default=True, type=click.IntRange(1),
              help="Supplier invoices per client company.")
@click.pass_context
def sandbox(ctx: click.Context, host: str, visma_port: int, tableau_port: int, size: int, client_companies: int,
            client_size: int) -> None:
    """Serve the Visma and Tableau sandboxes on localhost until interrupted (or, with a
    subcommand, act on a running Visma sandbox)."""
    if ctx.invoked_subcommand is not None:
        return
    from visma_tableau_pipeline.demo import serve_forever

    serve_forever(host, visma_port, tableau_port, size, announce=click.echo, client_companies=client_companies,
                  client_size=client_size)


@sandbox.command("close-period")
@click.option("--url", envvar="VTP_SANDBOX_URL", default="http://127.0.0.1:8765", show_default=True,
              help="The running Visma sandbox (VTP_SANDBOX_URL).")
@click.option("--company", required=True, help="Demo company id, e.g. nordic-no.")
@click.option("--period", required=True, help="Financial period, YYYYPP, e.g. 202610.")
@click.option("--module", "modules", multiple=True,
              help="Module code (AP, AR, IN, GL, CA, FA); repeat for several; default every one.")
@click.option("--reopen", is_flag=True, help="Reopen the period instead of closing it.")
def sandbox_close_period(url: str, company: str, period: str, modules: tuple[str, ...], reopen: bool) -> None:
    """Close (or reopen) a financial period in the running Visma sandbox, as a controller does at
    month end; the month-end close sensor sees it in its next evaluation."""
    import httpx

    response = httpx.post(
        f"{url.rstrip('/')}/_sandbox/close-period", timeout=30,
        json={"company_id": company, "period": period, "modules": list(modules) or None, "reopen": reopen},
    )
    if response.status_code != 200:
        raise click.ClickException(f"the sandbox at {url} refused: {response.json().get('error', response.text)}")
    from visma_tableau_pipeline.visma.periods import closed_modules

    closed = sorted(closed_modules(response.json()))
    click.echo(f"{company} {period}: closed in {', '.join(closed) or 'no module'}")


@main.command()
@click.option("--size", default=300, show_default=True, help="Supplier invoices per demo company.")
def demo(size: int) -> None:
    """Sandboxes, a full sync, extracts and a publish, in one process."""
    from visma_tableau_pipeline.demo import run_demo

    os.environ["VTP_SANDBOX"] = "1"  # the demo is the sandbox asked for
    get_settings.cache_clear()
    click.echo(run_demo(size).summary())


def _state_db() -> StateDB:
    db = get_settings().open_state()
    db.create_all()  # a state database from an older version gains the tables it lacks
    return db


@main.group()
def audit() -> None:
    """The delivery history: what reached Tableau, when, in which version."""


@audit.command("record")
@click.argument("company")
@click.argument("key", nargs=-1, required=True)
@click.option("--table", "data_source", default=None,
              help="Data source / table, e.g. ap_invoices (default: every one).")
def audit_record(company: str, key: tuple[str, ...], data_source: str | None) -> None:
    """Every delivered version of one record's rows: when each reached Tableau, which version
    (content hash), which run, and what changed.

    COMPANY and KEY as Tableau shows them: the company_id, then the record's key columns (for an
    invoice its document_type and reference_number; its lines and aging rows are shown too):

        vtp audit record nordic-no Invoice 000001 --table ap_invoices
    """
    from visma_tableau_pipeline.state import history

    with _state_db().connect() as conn:
        deliveries = history(conn, company, key, data_source)
    if not deliveries:
        where = f" to {data_source}" if data_source else ""
        raise click.ClickException(f"no delivery of {company} {' '.join(key)}{where} is on the ledger")
    previous: dict[tuple[str, str], dict] = {}
    for d in deliveries:
        click.echo(
            f"{d.delivered_at:%Y-%m-%d %H:%M:%S}  {d.record_key:<32} {d.data_source:<18} "
            f"{d.action:<6}  version {d.content_hash[:12]}  run {d.run_id}"
        )
        row = (d.data_source, d.record_key)
        content = json.loads(d.content) if d.content else {}
        before = previous.get(row)
        if before is not None and content:
            for field in sorted(set(before) | set(content)):
                if before.get(field) != content.get(field):
                    click.echo(f"      {field}: {before.get(field)!r} -> {content.get(field)!r}")
        if content:  # a resend or a delete carries no content: the version before stays the baseline
            previous[row] = content


@audit.command("run")
@click.argument("run_id")
def audit_run(run_id: str) -> None:
    """What one run delivered, per data source and action: insert, update, delete, and resend
    (a version Tableau already held, sent again by an overwrite or a replaced aging snapshot day).

    RUN_ID is the run `vtp sync` names in its summary, or a Dagster run id (a data source's
    materialization shows the command in its `ledger` metadata).
    """
    from visma_tableau_pipeline.state import run_summary

    with _state_db().connect() as conn:
        summary = run_summary(conn, run_id)
    if not summary:
        raise click.ClickException(f"run {run_id!r} delivered nothing that is on the ledger")
    for data_source, actions in sorted(summary.items()):
        click.echo(f"{data_source:<20} " + ", ".join(f"{a} {n}" for a, n in sorted(actions.items())))


@main.group()
def quarantine() -> None:
    """Records held back from the tables because they cannot be converted."""


@quarantine.command("list")
@click.option("--company", default=None, help="Company id (default: every company).")
@click.option("--entity", default=None, help="Catalogue entity, e.g. supplier_invoices (default: every one).")
def quarantine_list(company: str | None, entity: str | None) -> None:
    """Each held-back record: company, entity, key, field, value and reason.

    A record leaves the list by itself when Visma sends a version that converts (the next run
    after that takes it); fix it in Visma, not here.
    """
    from visma_tableau_pipeline.state.quarantine import held_records

    with _state_db().connect() as conn:
        held = held_records(conn, [company] if company else None, [entity] if entity else None)
    if not held:
        click.echo("No records are held back.")
        return
    for item in held:
        click.echo(item.describe())
    click.echo(f"{len(held)} records held back.")


@main.group()
def secrets() -> None:
    """Encrypted credentials in the state database (key: VTP_SECRET_KEY or $VTP_HOME/secret.key)."""


def _secret_store():
    from visma_tableau_pipeline.state import SecretStore, default_key_file, load_key

    return SecretStore(_state_db(), load_key(default_key_file(get_settings().home)))


@secrets.command("init")
def secrets_init() -> None:
    """Create the key file $VTP_HOME/secret.key (mode 600)."""
    from visma_tableau_pipeline.state import default_key_file, generate_key_file

    path = default_key_file(get_settings().home)
    generate_key_file(path)
    click.echo(f"created {path}; keep a copy: secrets stored with it cannot be read without it")


@secrets.command("set")
@click.argument("name")
@click.option("--value", default=None,
              help="The secret. Omitted: prompted for twice without echo, or read once from a pipe.")
def secrets_set(name: str, value: str | None) -> None:
    """Store NAME: visma/<company_id>/client_id, visma/<company_id>/client_secret,
    tableau/pat_secret or tableau/connected_app_secret_value.

    Piped, the value is read once (one trailing newline dropped), e.g.
    `printf %s "$PAT" | vtp secrets set tableau/pat_secret`; --value leaves it in the shell history.
    """
    from visma_tableau_pipeline.state.secrets import check_secret_name

    check_secret_name(name)  # before the user types a secret that would be refused
    if value is None:
        value = _read_secret_value()
    if not value:
        raise click.ClickException("the secret is empty: nothing was stored")
    _secret_store().set(name, value)
    click.echo(f"stored {name}")


def _read_secret_value() -> str:
    """From the terminal without echo (asked twice), or from a pipe once: getpass on a pipe warns
    that it cannot hide the input, and a second read of a pipe finds nothing."""
    if sys.stdin.isatty():
        return str(click.prompt("Value", hide_input=True, confirmation_prompt=True))
    value = sys.stdin.read()
    return value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")


@secrets.command("list")
def secrets_list() -> None:
    """Names and dates of stored secrets (never their values)."""
    for info in _secret_store().list():
        click.echo(f"{info.name}  (updated {info.updated_at:%Y-%m-%d %H:%M})")


@secrets.command("remove")
@click.argument("name")
def secrets_remove(name: str) -> None:
    """Remove NAME from the store."""
    if not _secret_store().remove(name):
        raise click.ClickException(f"no secret named {name!r} is stored")
    click.echo(f"removed {name}")


@main.group()
def webhooks() -> None:
    """Receive Visma and Tableau notifications into the inbox (sensors turn them into runs)."""


@webhooks.command("serve")
@click.option("--host", envvar="VTP_WEBHOOK_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="VTP_WEBHOOK_PORT", default=8780, show_default=True)
def webhooks_serve(host: str, port: int) -> None:
    """Serve POST /webhooks/visma and POST /webhooks/tableau/<token>.

    Secrets come from VTP_VISMA_WEBHOOK_SECRET (the Visma subscription's signing secret) and
    VTP_TABLEAU_WEBHOOK_TOKEN (a long random token, part of the Tableau webhook's URL).
    """
    import os

    from visma_tableau_pipeline.webhook_receiver import serve

    settings = get_settings()
    serve(
        settings.state_url, host, port,
        visma_secret=os.environ.get("VTP_VISMA_WEBHOOK_SECRET"),
        tableau_token=os.environ.get("VTP_TABLEAU_WEBHOOK_TOKEN"),
        tenant_companies={c.tenant_id: c.company_id for c in settings.companies},
    )


if __name__ == "__main__":
    main()
