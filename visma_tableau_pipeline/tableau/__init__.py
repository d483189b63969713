"""Tableau: the one folder that talks to Tableau (sign-in, session care, data sources, payloads).

- `session`: `TableauSession` (PAT or Connected App JWT; re-signs in on age and on 401002;
  retries 429 and 5xx) over the real tableauserverclient.
- `datasources`: projects, full publishes, `update_hyper_data` requests and their jobs.
- `directory`: users and groups for row-level security (entitlements).
- `pat`: when the PAT will expire.

What to send and when (change sets, the audit ledger) is decided in `delivery/`.
"""

from visma_tableau_pipeline.tableau.datasources import (
    PublishOutcome,
    ensure_project,
    find_datasource,
    publish_changes,
    publish_full,
)
from visma_tableau_pipeline.tableau.errors import (
    TableauConfigError,
    TableauError,
    TableauJobFailed,
    TableauSignInError,
    TableauThrottled,
)
from visma_tableau_pipeline.tableau.pat import PatStatus, PatUsageFile, pat_status
from visma_tableau_pipeline.tableau.session import RetryPolicy, TableauSession

__all__ = [
    "PatStatus",
    "PatUsageFile",
    "PublishOutcome",
    "RetryPolicy",
    "TableauConfigError",
    "TableauError",
    "TableauJobFailed",
    "TableauSession",
    "TableauSignInError",
    "TableauThrottled",
    "ensure_project",
    "find_datasource",
    "pat_status",
    "publish_changes",
    "publish_full",
]
