"""The state database: one engine, tables created on first use, and write transactions.

SQLite (a file under $VTP_HOME) is the default; PostgreSQL is for production. A Dagster run and a
sensor share the SQLite file, so it runs in WAL mode (readers never wait for the writer) with a busy
timeout, and write transactions start with BEGIN IMMEDIATE: a writer takes the write lock up
front and waits its turn, instead of failing with "database is locked" when it upgrades a read
lock half-way through a transaction.

PostgreSQL may be down or restarting for a while (a failover, an upgrade). Opening a transaction
retries connection failures with backoff for up to `connect_budget_s` (30 s by default), logging
each retry; then it fails with `StateUnavailableError`, which names the database (never its
password) and what to do. A connection lost in the middle of a transaction cannot be retried here
(the work inside it would have to run again); it fails with the same error, nothing of it committed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_random_exponential,
)

from visma_tableau_pipeline.state.batches import BATCH_SIZE
from visma_tableau_pipeline.state.errors import StateConfigError, StateUnavailableError
from visma_tableau_pipeline.state.schema import metadata

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PAGE_SIZE = 16_384
OWNER_ONLY = 0o600  # mode of a new SQLite state file: it holds financial records and secrets
_POSTGRES_DRIVER = "postgresql+psycopg2"
_CREATE_LOCK_ID = 0x565450  # pg advisory lock id for create_all ("VTP")
_READ_ONLY = "vtp_read_only"
DEFAULT_CONNECT_BUDGET_S = 30.0
MAX_CONNECT_WAIT_S = 5.0  # waits between attempts grow to this, so a recovery is seen soon
PG_CONNECT_TIMEOUT_S = 10  # one attempt; unless the URL sets connect_timeout itself
# Connection failures that waiting does not cure: the URL or the server's rules must change.
_PERMANENT_CONNECT_FAILURES = (
    "password authentication failed", "does not exist", "no pg_hba.conf entry",
    "could not translate host name",
)


def normalise_url(url: str) -> URL:
    """Parse a state URL; `postgres://` and `postgresql://` mean psycopg2, the driver installed.

    SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, which this project does not install.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StateConfigError(
            "the state database URL cannot be parsed; expected e.g. sqlite:///path/state.db or "
            "postgresql+psycopg2://user@host/db"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername=_POSTGRES_DRIVER)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StateConfigError(
            f"the state database must be SQLite or PostgreSQL, not {parsed.get_backend_name()!r}",
            backend=parsed.get_backend_name(),
        )
    return parsed


class StateDB:
    """The project's state database. Creates its tables on first use.

    Use `transaction()` for anything that writes; use `connect()` for reads that must not wait
    for a writer.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        connect_budget_s: float = DEFAULT_CONNECT_BUDGET_S,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = normalise_url(url)
        self._connect_budget_s = connect_budget_s
        self._backoff_s = backoff_s
        self._sleep = sleep
        self.engine: Engine = self._create_engine(echo)
        self.create_all()

    def __repr__(self) -> str:
        return f"StateDB({self.safe_url!r})"

    @property
    def safe_url(self) -> str:
        """The URL with its password masked: what messages and logs may show."""
        return self.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def _create_engine(self, echo: bool) -> Engine:
        if self.url.get_backend_name() == "postgresql":
            # Batched executemany: SQLAlchemy does not batch INSERT ... ON CONFLICT into one
            # multi-row VALUES, so psycopg2's execute_batch sends pages of statements instead of
            # one round trip per row.
            # pre-ping: a pooled connection that a restart of the server ended is replaced at
            # the start of the next transaction instead of failing inside it.
            connect_args = {} if "connect_timeout" in self.url.query else {
                "connect_timeout": PG_CONNECT_TIMEOUT_S
            }
            return create_engine(
                self.url,
                echo=echo,
                pool_pre_ping=True,
                executemany_mode="values_plus_batch",
                executemany_batch_page_size=BATCH_SIZE,
                connect_args=connect_args,
            )
        database = self.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_owner_only(Path(database).expanduser())
        engine = create_engine(
            self.url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine

    def create_all(self) -> None:
        """Create missing tables and indexes. Safe to call from several processes at once."""
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CREATE_LOCK_ID})
            metadata.create_all(conn)
            for table in metadata.sorted_tables:  # indexes added to tables that already exist
                for index in table.indexes:
                    index.create(conn, checkfirst=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        Store data and advance the watermark that covers it in the same transaction, so a crash
        leaves either both or neither.
        """
        with self._connection() as conn, self._lost_connection_typed(), conn.begin():
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read-only transaction that does not take SQLite's write lock."""
        with self._connection() as conn, self._lost_connection_typed():
            conn = conn.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                yield conn

    def _connection(self) -> Connection:
        """A live connection, waiting out a PostgreSQL server that is down or restarting."""
        if self.dialect != "postgresql":
            return self.engine.connect()  # SQLite: a file, and a busy timeout for its lock
        retrying = Retrying(
            stop=stop_before_delay(self._connect_budget_s),
            wait=wait_random_exponential(multiplier=self._backoff_s, max=MAX_CONNECT_WAIT_S),
            retry=retry_if_exception(_transient_connect_failure),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self.engine.connect)
        except OperationalError as error:
            if _transient_connect_failure(error):
                raise StateUnavailableError(
                    f"the state database {self.safe_url} could not be reached for "
                    f"{self._connect_budget_s:.0f} s ({_driver_message(error)}); check that the "
                    "PostgreSQL server is running and accepts connections (or set VTP_STATE_URL), "
                    "then run the command again; a sync continues where the last one stopped",
                    database=self.safe_url,
                ) from None
            raise StateUnavailableError(
                f"the state database {self.safe_url} refused the connection "
                f"({_driver_message(error)}); check the user, password, database and host in "
                "VTP_STATE_URL", database=self.safe_url,
            ) from None

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "state database %s unreachable (%s); retry %d in %.1f s (%.0f of %.0f s spent)",
            self.safe_url, _driver_message(error), state.attempt_number, wait_s,
            state.seconds_since_start, self._connect_budget_s,
        )

    @contextmanager
    def _lost_connection_typed(self) -> Iterator[None]:
        """A connection lost inside a transaction, as the error a user can act on."""
        try:
            yield
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            raise StateUnavailableError(
                f"the connection to the state database {self.safe_url} was lost during a "
                f"transaction ({_driver_message(error)}); nothing of it was committed. Check the "
                "PostgreSQL server, then run the command again; a sync continues where the last "
                "one stopped",
                database=self.safe_url,
            ) from None

    def dispose(self) -> None:
        """Close pooled connections (tests, and processes that fork)."""
        self.engine.dispose()


def _create_owner_only(path: Path) -> None:
    """Create the SQLite file empty with mode 0600, unless it exists.

    It holds the company's financial records and the encrypted secrets, and SQLite would create
    it readable by everyone (0644 under the usual umask). SQLite gives the `-wal` and `-shm` files
    the mode of the database file, so they are owner-only too. An existing file keeps its mode:
    its owner may have chosen it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:
        return
    os.close(descriptor)
    log.info("created the state database %s (mode %o)", path, OWNER_ONLY)


def _transient_connect_failure(error: BaseException) -> bool:
    """A connection failure that waiting may cure: the server is down, restarting, or far."""
    if not isinstance(error, OperationalError):
        return False
    message = _driver_message(error).lower()
    return not any(permanent in message for permanent in _PERMANENT_CONNECT_FAILURES)


def _driver_message(error: BaseException | None) -> str:
    """The driver's own words, first line (it names host and port, never the password)."""
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (the pysqlite driver would defer it).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # A new file gets larger pages (before WAL mode fixes the size; an existing file keeps its
        # own): a page of records is ~3 MB, and at 4 KB a page its commit and checkpoint made
        # thousands of small reads and writes, about half the store's CPU time on a VM
        # (benchmarks/visma_sync.py).
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL never corrupts the file; a power cut may drop the last commits, and
        # their watermark with them (one transaction), so the next run reads those records again.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(_READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
