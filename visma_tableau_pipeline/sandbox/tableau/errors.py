"""Errors the sandbox answers with, in Tableau's own shape (HTTP status plus a six-digit code).

The codes are the ones Tableau documents or returns for the same situation, so that a client's
error handling (for example re-signing in on 401002, or treating 409004 as "already exists") is
exercised exactly as it would be against the real server.
"""

from __future__ import annotations


class TableauApiError(Exception):
    """One REST error: rendered as `<tsResponse><error code=...>` with the given HTTP status."""

    def __init__(self, status: int, code: str, summary: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {summary}: {detail}")
        self.status = status
        self.code = code
        self.summary = summary
        self.detail = detail


def invalid_session() -> TableauApiError:
    """An expired, ended or unknown session token (Tableau's 401002)."""
    return TableauApiError(
        401,
        "401002",
        "Unauthorized Access",
        "Invalid authentication credentials were provided.",
    )


def sign_in_failed(detail: str) -> TableauApiError:
    """Wrong PAT, password, JWT or site (Tableau's 401001). `detail` never holds a secret."""
    return TableauApiError(401, "401001", "Signin Error", detail)


def bad_request(detail: str, code: str = "400000") -> TableauApiError:
    return TableauApiError(400, code, "Bad Request", detail)


def not_found(code: str, what: str) -> TableauApiError:
    return TableauApiError(404, code, "Resource Not Found", what)


def conflict(code: str, detail: str) -> TableauApiError:
    return TableauApiError(409, code, "Resource Conflict", detail)


# Not-found codes, one per resource kind, as Tableau numbers them.
SITE_NOT_FOUND = "404000"
USER_NOT_FOUND = "404002"
RESOURCE_NOT_FOUND = "404003"
PROJECT_NOT_FOUND = "404005"
GROUP_NOT_FOUND = "404009"
DATASOURCE_NOT_FOUND = "404011"
UPLOAD_NOT_FOUND = "404025"
JOB_NOT_FOUND = "404031"
WEBHOOK_NOT_FOUND = "404051"

# Conflict codes.
DATASOURCE_EXISTS = "409004"
PROJECT_EXISTS = "409006"
GROUP_EXISTS = "409009"
USER_EXISTS = "409017"
WEBHOOK_EXISTS = "409080"
