"""Tableau: sign-in and session care, publishing, incremental updates.

- `session`: `TableauSession` (PAT or Connected App JWT; re-signs in on age and on 401002;
  retries 429 and 5xx) over the real tableauserverclient.
- `changes`: pure change sets (row keys, content hashes), Tableau actions, request ids.
- `payload`: payload .hyper files for incremental updates, split under the byte limit.
- `publish`: projects, full publishes, `update_hyper_data` requests and their jobs.
- `delivery`: `deliver_table`, the one call the Dagster layer makes per dashboard table.
- `pat`: when the PAT will expire.
"""

from visma_tableau_pipeline.tableau.changes import ChangeSet, RowChange, compute_changes
from visma_tableau_pipeline.tableau.delivery import DeliveryOutcome, deliver_table, replace_partition
from visma_tableau_pipeline.tableau.errors import (
    TableauConfigError,
    TableauError,
    TableauJobFailed,
    TableauSignInError,
    TableauThrottled,
)
from visma_tableau_pipeline.tableau.pat import PatStatus, PatUsageFile, pat_status
from visma_tableau_pipeline.tableau.publish import (
    PublishOutcome,
    ensure_project,
    find_datasource,
    publish_changes,
    publish_full,
)
from visma_tableau_pipeline.tableau.session import RetryPolicy, TableauSession

__all__ = [
    "ChangeSet",
    "DeliveryOutcome",
    "PatStatus",
    "PatUsageFile",
    "PublishOutcome",
    "RetryPolicy",
    "RowChange",
    "TableauConfigError",
    "TableauError",
    "TableauJobFailed",
    "TableauSession",
    "TableauSignInError",
    "TableauThrottled",
    "compute_changes",
    "deliver_table",
    "ensure_project",
    "find_datasource",
    "pat_status",
    "publish_changes",
    "publish_full",
    "replace_partition",
]
