"""The JWT a Tableau Connected App (direct trust) signs in with.

HS256 over the Connected App's secret value, with `kid` = secret id and `iss` = client id in the
header, and the claims Tableau requires: `iss`, `exp` (at most 10 minutes ahead), a fresh `jti`,
`aud` "tableau", `sub` (the user to act as) and `scp` (the REST scopes granted), signed by PyJWT.

Each sign-in mints a new token, so a session ending early just means signing in again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import jwt

from visma_tableau_pipeline.settings import TableauSettings
from visma_tableau_pipeline.tableau.errors import TableauConfigError

MAX_LIFETIME_S = 10 * 60
DEFAULT_LIFETIME_S = 5 * 60
SCOPES = (
    "tableau:content:read",
    "tableau:projects:create",
    "tableau:datasources:create",
    "tableau:datasources:overwrite",
    "tableau:datasources:update",
)


def connected_app_jwt(
    settings: TableauSettings, now_epoch_s: float, *, lifetime_s: int = DEFAULT_LIFETIME_S,
    scopes: Sequence[str] = SCOPES,
) -> str:
    """A signed JWT for `settings`' Connected App, valid from `now_epoch_s` for `lifetime_s`."""
    client_id = settings.connected_app_client_id
    secret_id = settings.connected_app_secret_id
    secret = settings.connected_app_secret_value
    missing = [name for name, value in (
        ("connected_app_client_id", client_id), ("connected_app_secret_id", secret_id),
        ("connected_app_secret_value", secret), ("username", settings.username),
    ) if not value]
    if missing:
        raise TableauConfigError(
            f"Connected App sign-in needs {', '.join(missing)} (TABLEAU_CONNECTED_APP_* and "
            "TABLEAU_USERNAME)", server_url=settings.server_url,
        )
    if not 0 < lifetime_s <= MAX_LIFETIME_S:
        raise TableauConfigError(f"a Connected App JWT lives at most {MAX_LIFETIME_S} s; "
                                 f"asked for {lifetime_s}")
    assert secret is not None
    claims = {
        "iss": client_id,
        "exp": int(now_epoch_s) + lifetime_s,
        "jti": str(uuid.uuid4()),
        "aud": "tableau",
        "sub": settings.username,
        "scp": list(scopes),
    }
    return jwt.encode(claims, secret.get_secret_value(), algorithm="HS256",
                      headers={"kid": secret_id, "iss": client_id})
