"""Table definitions of the state database (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Timestamps the project makes are stored as UTC. Timestamps Visma sends (`last_modified`, watermark
values) are kept as the text Visma sent, because their time zone is not documented and they must be
sent back to Visma in the same form.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    SQLite has no time zone type and returns naive values; storing UTC and reattaching UTC on read
    makes values from both backends compare and sort the same way.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state database stores aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_NAME = String(200)

records = Table(
    "vtp_records",
    metadata,
    Column("company_id", _NAME, primary_key=True),
    Column("entity", _NAME, primary_key=True),
    Column("record_key", String(1000), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("last_modified", String(40)),
    Column("period", String(6)),
    Column("deleted_at", UTCDateTime),
    Column("first_seen_run", _NAME, nullable=False),
    Column("last_changed_run", _NAME, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_vtp_records_period", "company_id", "entity", "period"),
    Index("ix_vtp_records_updated", "entity", "updated_at"),  # what changed since a delivery
)

watermarks = Table(
    "vtp_watermarks",
    metadata,
    Column("company_id", _NAME, primary_key=True),
    Column("entity", _NAME, primary_key=True),
    Column("scope", _NAME, primary_key=True),  # "" for the whole entity, else a YYYYPP period
    Column("value", String(40)),
    Column("run_id", _NAME),
    Column("updated_at", UTCDateTime),
    Column("last_full_sync_at", UTCDateTime),
    Column("last_full_sync_run", _NAME),
)

inbox = Table(
    "vtp_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(20), nullable=False),
    Column("notification_id", String(300), nullable=False),
    Column("company_id", _NAME),
    Column("entity", _NAME),
    Column("record_key", String(1000)),
    Column("raw_body", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime),
    Column("run_key", String(300)),
    UniqueConstraint("source", "notification_id", name="uq_vtp_inbox_notification"),
    Index("ix_vtp_inbox_pending", "processed_at", "received_at"),
)

ledger = Table(
    "vtp_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", _NAME, nullable=False),
    Column("entity", _NAME, nullable=False),
    Column("record_key", String(1000), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("data_source", _NAME, nullable=False),
    Column("action", String(10), nullable=False),
    Column("run_id", _NAME, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=False),
    Column("content", Text),
    UniqueConstraint(
        "run_id", "data_source", "company_id", "entity", "record_key", "content_hash", "action",
        name="uq_vtp_ledger_delivery",
    ),
    Index("ix_vtp_ledger_record", "record_key", "company_id", "entity"),
    Index("ix_vtp_ledger_source", "data_source", "company_id"),
)

secrets = Table(
    "vtp_secrets",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("key_id", String(16), nullable=False),  # fingerprint of the key, to tell a wrong key
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per Tableau data source this project publishes: what the next delivery compares with.
publications = Table(
    "vtp_publications",
    metadata,
    Column("data_source", _NAME, primary_key=True),
    Column("datasource_id", String(100)),
    Column("schema_fingerprint", String(64)),
    Column("run_id", _NAME, nullable=False),
    Column("mode", String(20), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The rows each data source holds now, as delivered: the ledger's latest version of every live row.
# An incremental delivery looks up only the groups (source records) that changed.
delivered_rows = Table(
    "vtp_delivered_rows",
    metadata,
    Column("data_source", _NAME, primary_key=True),
    Column("row_key", String(1000), primary_key=True),
    Column("group_key", String(1000), nullable=False),  # the source record's part of the key
    Column("content_hash", String(64), nullable=False),
    Index("ix_vtp_delivered_rows_group", "data_source", "group_key"),
)

# Moments in the record store's history (its `updated_at`) that a table has caught up with:
# kind "extract" for the extract last written, "delivered" for what its data source holds.
table_cursors = Table(
    "vtp_table_cursors",
    metadata,
    Column("table_name", _NAME, primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("value", UTCDateTime),
    Column("run_id", _NAME),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Records held back from the dashboard tables: one row per record version that a table could not
# convert. It applies while the stored record still has that content; a new version is tried again.
quarantine = Table(
    "vtp_quarantine",
    metadata,
    Column("company_id", _NAME, primary_key=True),
    Column("entity", _NAME, primary_key=True),
    Column("record_key", String(1000), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("table_name", _NAME, nullable=False),  # the table whose build met it first
    Column("field", String(300), nullable=False),
    Column("value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("run_id", _NAME, nullable=False),
    Column("held_at", UTCDateTime, nullable=False),
)

# Visma's rate budget per company and client, shared by every process that reads that company
# (visma/shared_pacing.py): as last reported, and the schedule of what is left of the window.
rate_budgets = Table(
    "vtp_rate_budgets",
    metadata,
    Column("api_url", String(300), primary_key=True),
    Column("tenant_id", _NAME, primary_key=True),
    Column("client_id", _NAME, primary_key=True),
    Column("request_limit", Integer),  # X-RateLimit-Limit
    Column("remaining", Integer),  # X-RateLimit-Remaining, less the requests counted since
    Column("reset_at", UTCDateTime),  # the window's end (now + X-RateLimit-Reset)
    Column("next_slot", UTCDateTime),  # when the remainder is low: the next request's moment
    Column("hold_until", UTCDateTime),  # a 429's Retry-After
    # requests that may count in a window not yet reported (see visma/pacing.Budget)
    Column("unreported", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)
