"""The Hyper engine behind the sandbox's stored data sources.

One Hyper process serves the sandbox for its lifetime (started on first use). Each operation
attaches the stored file as `target` and the uploaded file as `source` and runs in one Hyper
transaction, so a request whose second action fails leaves the stored rows as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tableauhyperapi import (
    Connection,
    HyperException,
    HyperProcess,
    TableName,
    Telemetry,
    escape_name,
)

from visma_tableau_pipeline.sandbox.tableau.hyper_actions import HyperActionError, action_statements

log = logging.getLogger(__name__)

TARGET, SOURCE = "target", "source"


class InvalidHyperFile(ValueError):
    """The bytes are not a Hyper database Hyper can open."""


class HyperEngine:
    """Runs SQL over stored .hyper files. Not thread-safe: the caller serializes."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._process: HyperProcess | None = None

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None

    @contextmanager
    def _connect(self, target: Path, source: Path | None = None) -> Iterator[Connection]:
        if self._process is None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            self._process = HyperProcess(
                Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(self._log_dir)}
            )
        with Connection(self._process.endpoint) as connection:
            connection.catalog.attach_database(str(target), alias=TARGET)
            if source is not None:
                connection.catalog.attach_database(str(source), alias=SOURCE)
            yield connection

    def tables(self, path: Path) -> list[TableName]:
        """Every table of the file (checks that it is a Hyper database at all)."""
        try:
            with self._connect(path) as connection:
                return _tables(connection, TARGET)
        except HyperException as exc:
            raise InvalidHyperFile(
                f"the uploaded file is not a readable Hyper database: {exc.main_message}"
            ) from None

    def append(self, target: Path, source: Path) -> int:
        """Rows of every table in `source` appended to the same-named table in `target`."""
        with self._connect(target, source) as connection:
            statements = []
            for table in _tables(connection, SOURCE):
                target_table = TableName(TARGET, table.schema_name.name, table.name)
                if not connection.catalog.has_table(target_table):
                    raise HyperActionError(
                        f"the stored data source has no table {table.schema_name.name.unescaped}"
                        f".{table.name.unescaped} to append to"
                    )
                names = ", ".join(escape_name(c) for c in _shared_columns(connection, target_table, table))
                statements.append(f"INSERT INTO {target_table} ({names}) SELECT {names} FROM {table}")
            return _run_in_transaction(connection, statements)

    def apply_actions(
        self, target: Path, source: Path | None, actions: Sequence[Mapping[str, Any]]
    ) -> int:
        """All actions in one transaction; the number of rows they touched."""
        with self._connect(target, source) as connection:
            statements = []
            for index, action in enumerate(actions):
                try:
                    statements.extend(_statements_of(connection, action, source is not None))
                except HyperActionError as exc:
                    raise HyperActionError(f"action {index} ({action.get('action')}): {exc}") from None
            return _run_in_transaction(connection, statements)


def _run_in_transaction(connection: Connection, statements: Sequence[str]) -> int:
    connection.execute_command("BEGIN TRANSACTION")
    try:
        touched = sum(connection.execute_command(sql) or 0 for sql in statements)
    except HyperException as exc:
        connection.execute_command("ROLLBACK")
        raise HyperActionError(f"Hyper rejected the update: {exc.main_message}") from None
    connection.execute_command("COMMIT")
    return touched


def _statements_of(connection: Connection, action: Mapping[str, Any], has_payload: bool) -> list[str]:
    if not isinstance(action, Mapping):
        raise HyperActionError("an action must be a JSON object")
    target = _resolve(connection, TARGET, action.get("target-schema"), action.get("target-table"))
    source = None
    if action.get("source-table") is not None:
        if not has_payload:
            raise HyperActionError("it names a source table, but the request carries no payload")
        source = _resolve(connection, SOURCE, action.get("source-schema"), action.get("source-table"))
    shared = _shared_columns(connection, target, source) if source is not None else []
    return action_statements(action, str(target), str(source) if source else None, shared)


def _tables(connection: Connection, database: str) -> list[TableName]:
    return [
        table
        for schema in connection.catalog.get_schema_names(database)
        for table in connection.catalog.get_table_names(schema)
    ]


def _resolve(connection: Connection, database: str, schema: Any, table: Any) -> TableName:
    if not table:
        raise HyperActionError(f"no {database} table is named")
    if schema:
        name = TableName(database, str(schema), str(table))
        if not connection.catalog.has_table(name):
            raise HyperActionError(f"the {database} has no table {schema}.{table}")
        return name
    candidates = [t for t in _tables(connection, database) if t.name.unescaped == str(table)]
    if len(candidates) != 1:
        raise HyperActionError(
            f"the {database} has {len(candidates)} tables named {table!r}; name its schema"
        )
    return candidates[0]


def _shared_columns(connection: Connection, target: TableName, source: TableName | None) -> list[str]:
    """Target column names (unescaped) that the source also has, in the target's order."""
    target_columns = [c.name.unescaped for c in connection.catalog.get_table_definition(target).columns]
    if source is None:
        return target_columns
    source_columns = {c.name.unescaped for c in connection.catalog.get_table_definition(source).columns}
    shared = [c for c in target_columns if c in source_columns]
    if not shared:
        raise HyperActionError(f"{source} shares no column with {target}")
    return shared


