"""Sign-in and sessions, with Tableau's rules.

- PAT, Connected App JWT (HS256, direct trust) and username/password credentials.
- One session per PAT: signing in again with a PAT ends its earlier session, whose token then
  answers 401002, as on Tableau Cloud and Server.
- Sessions end after a fixed lifetime (240 minutes by default, Tableau Server's default).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from visma_tableau_pipeline.sandbox.tableau import errors, hs256
from visma_tableau_pipeline.sandbox.tableau.directory import Directory, SandboxUser
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock

log = logging.getLogger(__name__)

DEFAULT_SESSION_LIFETIME_S = 240 * 60
MAX_JWT_LIFETIME_S = 10 * 60
_CLOCK_SKEW_S = 5


@dataclass(frozen=True)
class ConnectedApp:
    """A Connected App with direct trust: JWTs are signed with `secret_value`, `kid` = secret id."""

    client_id: str
    secret_id: str
    secret_value: str = field(repr=False)


@dataclass
class Session:
    token: str = field(repr=False)
    user_id: str
    expires_at: float
    pat_name: str | None = None


class Authenticator:
    """Checks credentials and keeps the live sessions. Not thread-safe: the service locks."""

    def __init__(
        self,
        directory: Directory,
        pats: Mapping[str, str],
        connected_app: ConnectedApp | None,
        session_lifetime_s: float,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._pats = dict(pats)
        self._connected_app = connected_app
        self._lifetime_s = session_lifetime_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def sign_in(self, credentials: ET.Element) -> Session:
        site = credentials.find("site")
        content_url = site.get("contentUrl", "") if site is not None else ""
        if content_url != self._directory.site.content_url:
            raise errors.sign_in_failed(f"Site '{content_url}' does not exist on this server.")
        pat_name = credentials.get("personalAccessTokenName")
        if pat_name is not None:
            user = self._check_pat(pat_name, credentials.get("personalAccessTokenSecret", ""))
            self._end_sessions_of_pat(pat_name)
        elif credentials.get("jwt") is not None:
            user = self._check_jwt(credentials.get("jwt", ""))
        elif credentials.get("name") is not None:
            user = self._check_password(credentials.get("name", ""), credentials.get("password", ""))
        else:
            raise errors.bad_request("The credentials element names no known kind of credentials.")
        session = Session(
            token=f"{secrets.token_urlsafe(24)}|{self._directory.site.id}",
            user_id=user.id,
            expires_at=self._clock() + self._lifetime_s,
            pat_name=pat_name,
        )
        self._sessions[session.token] = session
        log.info("sandbox sign-in: user %s, %s", user.name, "PAT " + pat_name if pat_name else "no PAT")
        return session

    def session(self, token: str | None) -> Session:
        """The live session of `token`; 401002 for a missing, ended or expired one."""
        found = self._sessions.get(token or "")
        if found is None:
            raise errors.invalid_session()
        if self._clock() >= found.expires_at:
            del self._sessions[found.token]
            raise errors.invalid_session()
        return found

    def sign_out(self, token: str | None) -> None:
        self._sessions.pop(self.session(token).token, None)

    def _check_pat(self, name: str, secret: str) -> SandboxUser:
        expected = self._pats.get(name)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            raise errors.sign_in_failed(
                "Error signing in to Tableau Server: the personal access token is invalid or revoked."
            )
        return self._directory.admin

    def _end_sessions_of_pat(self, pat_name: str) -> None:
        ended = [t for t, s in self._sessions.items() if s.pat_name == pat_name]
        for token in ended:
            del self._sessions[token]
        if ended:
            log.info("sandbox: a new sign-in with PAT %s ended its earlier session", pat_name)

    def _check_password(self, name: str, password: str) -> SandboxUser:
        user = self._directory.user_by_name(name)
        if user is None or user.password is None or not hmac.compare_digest(
            user.password.encode(), password.encode()
        ):
            raise errors.sign_in_failed("Error signing in to Tableau Server: wrong user name or password.")
        return user

    def _check_jwt(self, token: str) -> SandboxUser:
        app = self._connected_app
        if app is None:
            raise errors.sign_in_failed("No Connected App is configured on this site.")
        try:
            header = hs256.unverified_header(token)
            if header.get("kid") != app.secret_id:
                raise hs256.JwtError("the kid header does not name this Connected App's secret")
            claims = hs256.verify(token, app.secret_value)
        except hs256.JwtError as exc:
            raise errors.sign_in_failed(f"Invalid JWT: {exc}.") from None
        return self._user_of_claims(claims, header)

    def _user_of_claims(self, claims: Mapping[str, Any], header: Mapping[str, Any]) -> SandboxUser:
        app = self._connected_app
        assert app is not None
        now = self._clock()
        problems = []
        if claims.get("iss") != app.client_id or header.get("iss", app.client_id) != app.client_id:
            problems.append("iss is not this Connected App's client id")
        audience = claims.get("aud")
        if audience != "tableau" and not (isinstance(audience, list) and "tableau" in audience):
            problems.append("aud is not 'tableau'")
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or expires <= now:
            problems.append("exp is missing or in the past")
        elif expires > now + MAX_JWT_LIFETIME_S + _CLOCK_SKEW_S:
            problems.append("exp is more than 10 minutes ahead")
        if not claims.get("jti"):
            problems.append("jti is missing")
        scopes = claims.get("scp")
        if not isinstance(scopes, list) or not scopes:
            problems.append("scp must be a non-empty list of scopes")
        user = self._directory.user_by_name(str(claims.get("sub", "")))
        if user is None:
            problems.append("sub names no user on this site")
        if problems:
            raise errors.sign_in_failed("Invalid JWT: " + "; ".join(problems) + ".")
        assert user is not None
        return user
