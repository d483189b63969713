"""HS256 JSON Web Tokens, the kind a Tableau Connected App (direct trust) accepts.

Written with `hmac` instead of a JWT library: HS256 is one HMAC-SHA256 over two base64url
segments, and the sandbox needs only that one algorithm. `encode` lets tests, benchmarks and the
`vtp sandbox` instructions mint tokens the sandbox will accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any


class JwtError(ValueError):
    """The token is malformed or its signature does not verify. Never carries the token itself."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, TypeError):
        raise JwtError("a token segment is not base64url") from None


def encode(claims: Mapping[str, Any], secret: str, headers: Mapping[str, Any] | None = None) -> str:
    """A compact HS256 token over `claims`, with extra header fields such as `kid` and `iss`."""
    header = {"alg": "HS256", "typ": "JWT", **(headers or {})}
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    )
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(signature)


def unverified_header(token: str) -> dict[str, Any]:
    """The header, read before verification so that `kid` can pick the secret."""
    return _json_segment(_segments(token)[0])


def verify(token: str, secret: str) -> dict[str, Any]:
    """The claims of a token whose HS256 signature matches `secret`; raises JwtError otherwise."""
    header_segment, claims_segment, signature_segment = _segments(token)
    if _json_segment(header_segment).get("alg") != "HS256":
        raise JwtError("only HS256 tokens are accepted")
    expected = hmac.new(
        secret.encode(), f"{header_segment}.{claims_segment}".encode("ascii"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, _b64url_decode(signature_segment)):
        raise JwtError("the signature does not verify")
    return _json_segment(claims_segment)


def _segments(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("a JWT has three dot-separated segments")
    return parts[0], parts[1], parts[2]


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(segment))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise JwtError("a token segment is not JSON") from None
    if not isinstance(value, dict):
        raise JwtError("a token segment is not a JSON object")
    return value
