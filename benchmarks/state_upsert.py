"""Rows per second for upserting 100,000 Visma records into the state database.

Measures three passes over the same records: the first load (all inserts), a re-read with no
changes (all unchanged: the common nightly case), and a pass where every record changed.
Runs on a temporary SQLite file, and on PostgreSQL when reachable.

    .venv/bin/python benchmarks/state_upsert.py [--rows N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from visma_tableau_pipeline.state import StateDB, key_string, upsert_records
from visma_tableau_pipeline.state.record_store import RecordRow

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def supplier_invoice(number: int, revision: int) -> dict[str, Any]:
    """A payload shaped like a Visma supplier invoice, with lines and volatile fields."""
    amount = Decimal(number % 100_000) + Decimal("0.05") + revision
    return {
        "documentType": "Invoice",
        "referenceNumber": f"{number:07d}",
        "status": "Open",
        "date": "2025-03-01T00:00:00",
        "dueDate": "2025-03-31T00:00:00",
        "financialPeriod": "202503",
        "currencyId": "NOK",
        "amount": amount,
        "balance": amount,
        "amountInCurrency": amount,
        "vatTotal": (amount * Decimal("0.25")).quantize(Decimal("0.01")),
        "supplier": {"number": f"7{number % 500:04d}", "name": "Nordic Paper AS"},
        "supplierReference": f"INV-{number}",
        "description": "Office supplies, March",
        "branchNumber": {"number": "1", "name": "Main"},
        "lines": [
            {
                "lineNumber": line,
                "amount": amount / 2,
                "account": {"number": "4000", "description": "Purchases"},
                "subaccount": {"subaccountNumber": "0-00", "metadata": {"totalCount": 1}},
            }
            for line in (1, 2)
        ],
        "lastModifiedDateTime": f"2025-03-02T10:11:12.{revision:03d}",
        "timeStamp": "AAAAAAE=",
        "metadata": {"totalCount": 100_000, "maxPageSize": 500},
    }


def rows(count: int, revision: int) -> list[RecordRow]:
    out = []
    for number in range(count):
        payload = supplier_invoice(number, revision)
        key = key_string(("Invoice", payload["referenceNumber"]))
        out.append((key, "202503", payload["lastModifiedDateTime"], payload))
    return out


def measure(db: StateDB, label: str, count: int) -> None:
    for pass_name, revision in (("insert", 0), ("unchanged", 0), ("all changed", 1)):
        batch = rows(count, revision)
        started = time.perf_counter()
        with db.transaction() as conn:
            result = upsert_records(conn, "bench", "supplier_invoices", batch, "bench-run")
        seconds = time.perf_counter() - started
        print(f"{label:10} {pass_name:12} {count / seconds:>10,.0f} rows/s  "
              f"({seconds:.2f} s; {result})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        db = StateDB(f"sqlite:///{Path(home) / 'state.db'}")
        measure(db, "sqlite", args.rows)
        db.dispose()

    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"vtp_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        print(f"postgresql skipped: {args.postgres} not reachable ({exc.orig})")
        return
    try:
        db = StateDB(admin.url.set(database=name).render_as_string(hide_password=False))
        measure(db, "postgresql", args.rows)
        db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
