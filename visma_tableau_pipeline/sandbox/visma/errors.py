"""Visma's error answers, in the shapes the real API and Visma Connect use.

- 400 and similar from the ERP API: {"ExceptionType", "ExceptionMessage", "ExceptionFaultCode",
  "ExceptionMessageID", "ExceptionDetails"}.
- 401 from the ERP API and other framework-level answers: {"Message": ...} (ASP.NET's shape).
- Visma Connect (the token endpoint): OAuth 2.0 {"error", "error_description"}.
- 429 (the API gateway): {"statusCode": 429, "message": "Rate limit is exceeded. ..."}.
"""

from __future__ import annotations

import itertools
import uuid


class ApiError(Exception):
    """An answer other than 200, raised anywhere in request handling and rendered as is."""

    def __init__(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


_message_ids = itertools.count(1)


def validation_error(message: str, details: str = "") -> ApiError:
    """400 for a malformed or unknown parameter value."""
    return exception_error(400, "12022", message, details)


def exception_error(status: int, fault_code: str, message: str, details: str = "") -> ApiError:
    message_id = uuid.UUID(int=next(_message_ids), version=4)
    return ApiError(status, {
        "ExceptionType": "IPPException",
        "ExceptionMessage": message,
        "ExceptionFaultCode": fault_code,
        "ExceptionMessageID": f"{fault_code}_{message_id}",
        "ExceptionDetails": details,
    })


def unauthorized() -> ApiError:
    return ApiError(401, {"Message": "Authorization has been denied for this request."},
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def not_found(path: str) -> ApiError:
    return ApiError(404, {"Message": f"No HTTP resource was found that matches the request URI '{path}'."})


def oauth_error(status: int, error: str, description: str) -> ApiError:
    return ApiError(status, {"error": error, "error_description": description})
