"""HS256 JSON Web Tokens, the kind a Tableau Connected App (direct trust) accepts, via PyJWT.

The sandbox checks the signature here and the claims (`exp`, `aud`, `iss`, `sub`) itself, against
its own clock, as Tableau does. `encode` lets tests mint tokens the sandbox will accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt


class JwtError(ValueError):
    """The token is malformed or its signature does not verify. Never carries the token itself."""


def encode(claims: Mapping[str, Any], secret: str, headers: Mapping[str, Any] | None = None) -> str:
    """A compact HS256 token over `claims`, with extra header fields such as `kid` and `iss`."""
    return jwt.encode(dict(claims), secret, algorithm="HS256", headers=dict(headers or {}))


def unverified_header(token: str) -> dict[str, Any]:
    """The header, read before verification so that `kid` can pick the secret."""
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        raise JwtError(f"the token is malformed ({type(error).__name__})") from None


def verify(token: str, secret: str) -> dict[str, Any]:
    """The claims of a token whose HS256 signature matches `secret`; raises JwtError otherwise."""
    try:
        return jwt.decode(
            token, secret, algorithms=["HS256"],
            options={"verify_exp": False, "verify_aud": False, "verify_iss": False},
        )
    except jwt.InvalidSignatureError:
        raise JwtError("the signature does not verify") from None
    except jwt.InvalidTokenError as error:
        raise JwtError(f"the token is malformed ({type(error).__name__})") from None
