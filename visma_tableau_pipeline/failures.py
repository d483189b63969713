"""What a user reads when a `vtp` command fails: one line that says what failed and what to do.

The project's typed errors already carry that (the company, entity, page, setting or data source,
and a hint); the libraries' errors that can reach a command are put into the same words here, so
that the command line handles every failure in one place (`cli.main`) and shows a traceback only
when asked for (`vtp -v`). Nothing here repeats a secret: the typed errors never hold one, and the
library errors are reduced to their codes and first lines.
"""

from __future__ import annotations

import requests
import tableauserverclient as TSC
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from visma_tableau_pipeline.delivery.extract_store import ExtractStoreError
from visma_tableau_pipeline.settings import ConfigError, plain_problems
from visma_tableau_pipeline.state.errors import StateError
from visma_tableau_pipeline.tableau.errors import TableauError
from visma_tableau_pipeline.visma.errors import VismaError
from visma_tableau_pipeline.webhook_receiver import ReceiverConfigError

# Errors written for the user: their message is the explanation.
PROJECT_ERRORS = (ConfigError, VismaError, StateError, TableauError, ReceiverConfigError, ExtractStoreError)
RUN_AGAIN = "run the command again with -v for details"


def explain(error: Exception) -> str:
    """One line for `error`: what failed, for which thing, and what to do."""
    if isinstance(error, PROJECT_ERRORS):
        return _one_line(str(error))
    if isinstance(error, TSC.ServerResponseError):
        return _one_line(
            f"Tableau answered {error.code} ({error.summary}): {error.detail}; check the Tableau "
            "settings (TABLEAU_SERVER_URL, TABLEAU_SITE, TABLEAU_PROJECT) and the token's rights"
        )
    if isinstance(error, requests.RequestException):
        return (f"the network failed talking to Tableau ({type(error).__name__}); check "
                "TABLEAU_SERVER_URL and that Tableau is reachable, then run the command again")
    if isinstance(error, SQLAlchemyError):
        cause = getattr(error, "orig", None) or error
        return _one_line(f"the state database failed ({type(cause).__name__}: {_first_line(cause)}); "
                         f"check VTP_STATE_URL and the database server, or {RUN_AGAIN}")
    if isinstance(error, ValidationError):
        return plain_problems(error, lambda loc: ".".join(map(str, loc)))
    if isinstance(error, OSError):
        if error.filename:
            return (f"{error.filename}: {error.strerror or error}; check the path, its "
                    "permissions and free space")
        return _one_line(f"{error.strerror or error} ({type(error).__name__}); {RUN_AGAIN}")
    return _one_line(f"unexpected {type(error).__name__}: {_first_line(error)}. This is a bug in "
                     f"vtp: {RUN_AGAIN} and report the traceback")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
