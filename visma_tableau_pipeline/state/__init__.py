"""The project's own database: records, watermarks, webhook inbox, audit ledger, secrets.

Open it with `StateDB(settings.state_url)`; write inside `db.transaction()` and pass the
connection to the functions of `records`, `watermarks`, `inbox` and `ledger`, so that data and the
watermark covering it commit together. Secrets go through `SecretStore(db, load_key(...))`.
"""

from visma_tableau_pipeline.state.db import StateDB, normalise_url
from visma_tableau_pipeline.state.errors import (
    InboxError,
    LedgerError,
    PayloadError,
    SecretKeyError,
    SecretKeyFileError,
    SecretKeyMissingError,
    SecretNameError,
    SecretTamperedError,
    StateConfigError,
    StateError,
    StateUnavailableError,
    WatermarkError,
)
from visma_tableau_pipeline.state.inbox import Notification, add_notification, mark_processed, pending
from visma_tableau_pipeline.state.keys import key_parts, key_string
from visma_tableau_pipeline.state.ledger import (
    DeliveredKey,
    Delivery,
    deliveries_for_run,
    history,
    last_delivered,
    record_deliveries,
    run_summary,
)
from visma_tableau_pipeline.state.record_store import (
    UpsertResult,
    content_hashes,
    count,
    iter_records,
    keys_for,
    mark_deleted,
    upsert_records,
)
from visma_tableau_pipeline.state.secrets import (
    SecretInfo,
    SecretStore,
    default_key_file,
    generate_key_file,
    load_key,
)
from visma_tableau_pipeline.state.watermarks import (
    advance_watermark,
    get_watermark,
    last_full_sync,
    newest_watermark,
    record_full_sync,
)

__all__ = [
    "DeliveredKey",
    "Delivery",
    "InboxError",
    "LedgerError",
    "Notification",
    "PayloadError",
    "SecretInfo",
    "SecretKeyError",
    "SecretKeyFileError",
    "SecretKeyMissingError",
    "SecretNameError",
    "SecretStore",
    "SecretTamperedError",
    "StateConfigError",
    "StateDB",
    "StateError",
    "StateUnavailableError",
    "UpsertResult",
    "WatermarkError",
    "add_notification",
    "advance_watermark",
    "content_hashes",
    "count",
    "default_key_file",
    "deliveries_for_run",
    "generate_key_file",
    "get_watermark",
    "history",
    "iter_records",
    "key_parts",
    "key_string",
    "keys_for",
    "last_delivered",
    "last_full_sync",
    "load_key",
    "mark_deleted",
    "mark_processed",
    "newest_watermark",
    "normalise_url",
    "pending",
    "record_deliveries",
    "record_full_sync",
    "run_summary",
    "upsert_records",
]
