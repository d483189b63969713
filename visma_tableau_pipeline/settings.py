"""Every setting the project reads, read once.

One company comes from `VISMA_*` environment variables; several come from the YAML file named by
`VTP_CONFIG`. The bundled sandbox is the target only when asked for (VTP_SANDBOX=1 or VTP_SANDBOX_URL). With no Tableau
settings, extracts are written and nothing is published.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from visma_tableau_pipeline.state import SecretStore, StateDB, default_key_file, load_key
from visma_tableau_pipeline.state.db import normalise_url
from visma_tableau_pipeline.state.errors import StateConfigError

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.finance.visma.net"
DEFAULT_TOKEN_URL = "https://connect.visma.com/connect/token"
READ_SCOPE = "vismanet_erp_service_api:read"
DEMO_ENTITLEMENTS = Path(__file__).parent / "sandbox" / "entitlements.yaml"

# The demo group of the bundled Visma sandbox, when it is asked for: the companies it serves (company
# id -> company tenant id) and the client it accepts. Sandbox-only values, worthless against the
# real Visma. They live here, not in `sandbox/`, because settings sit below everything else; the
# sandbox serves exactly these tenants.
SANDBOX_TENANT_IDS: dict[str, str] = {
    "nordic-no": "4f1c2a9e-7b3d-4e51-9a0c-2d8e6b1f0a11",
    "nordic-se": "9b7e3d51-2c4a-4f86-b1e0-5a3c7d9e2f22",
}
# Besides the demo group, the sandbox serves generated small client companies when asked for
# (VTP_SANDBOX_COMPANIES, `vtp sandbox --companies`): an accounting office's clients, for benchmarks
# of many companies. Their tenant ids follow from their company ids, so that the sandbox and the
# settings agree without sharing anything but the count.
SANDBOX_CLIENT_COMPANY_PREFIX = "client-"
_SANDBOX_CLIENT_TENANTS = uuid.UUID("5e1d7c2a-3b94-4f0e-a6d2-8c71f09b4e33")
SANDBOX_CLIENT_ID = "nordlys_dagster_sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret-not-for-production"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it and what to do."""


class RetrySettings(BaseModel):
    """How long short outages are ridden out before a run fails with a clear error.

    Waits start at `backoff_s` and double (jittered) up to a cap; each system has a total budget
    per request (Visma, Tableau) or per transaction start (the state database). Tests shorten
    them; production keeps the defaults.
    """

    backoff_s: float = Field(default=1.0, gt=0)
    visma_s: float = Field(default=300.0, gt=0)
    state_s: float = Field(default=30.0, ge=0)
    tableau_s: float = Field(default=300.0, gt=0)


_RETRY_DEFAULTS = RetrySettings()


class CompanySettings(BaseModel):
    """One Visma.net company: its own token, rate budget and watermarks."""

    company_id: str = Field(description="Short stable name used in partitions and every row")
    client_id: str
    client_secret: SecretStr
    tenant_id: str = Field(description="The company tenant id (not the customer/contract one)")
    api_url: str = DEFAULT_API_URL
    token_url: str = DEFAULT_TOKEN_URL
    scope: str = READ_SCOPE
    ipp_company_id: str | None = Field(
        default=None, description="Sent as ipp-company-id when set, for compatibility"
    )
    max_concurrency: int = Field(default=4, ge=1, le=16)

    @field_validator("company_id")
    @classmethod
    def _company_id_is_a_name(cls, value: str) -> str:
        if not value or not all(ch.isalnum() or ch in "-_" for ch in value):
            raise ValueError(
                f"company_id {value!r} must be letters, digits, '-' or '_' (it names partitions)"
            )
        return value


class TableauSettings(BaseModel):
    """Where and how to publish. PAT or Connected App (JWT) credentials."""

    server_url: str
    site: str = ""
    project: str = "Visma"
    pat_name: str | None = None
    pat_secret: SecretStr | None = None
    connected_app_client_id: str | None = None
    connected_app_secret_id: str | None = None
    connected_app_secret_value: SecretStr | None = None
    username: str | None = None  # the user a Connected App JWT signs in as
    deployment: Literal["cloud", "server"] = "server"
    pat_created_on: date | None = None  # Tableau Server: the PAT's lifetime counts from here
    pat_lifetime_days: int = 365


class EnvSettings(BaseSettings):
    """The raw environment, with the names the README documents."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    visma_client_id: str | None = None
    visma_client_secret: SecretStr | None = None
    visma_tenant_id: str | None = None
    visma_company_id: str = "default"
    visma_api_url: str = DEFAULT_API_URL
    visma_token_url: str = DEFAULT_TOKEN_URL
    visma_ipp_company_id: str | None = None

    tableau_server_url: str | None = None
    tableau_site: str = ""
    tableau_pat_name: str | None = None
    tableau_pat_secret: SecretStr | None = None
    tableau_connected_app_client_id: str | None = None
    tableau_connected_app_secret_id: str | None = None
    tableau_connected_app_secret_value: SecretStr | None = None
    tableau_username: str | None = None
    tableau_project: str = "Visma"
    tableau_deployment: Literal["cloud", "server"] = "server"
    tableau_pat_created_on: date | None = None
    tableau_pat_lifetime_days: int = 365

    vtp_home: Path = Path(".vtp")
    vtp_state_url: str | None = None
    vtp_extracts_url: str | None = None  # an fsspec URL the extracts are shared through
    vtp_extracts_endpoint_url: str | None = None  # an S3-compatible store's endpoint (s3:// only)
    vtp_config: Path | None = None
    vtp_first_month: date = date(2025, 1, 1)
    vtp_entitlements: Path | None = None
    vtp_sandbox: bool = False  # read the bundled sandbox (asked for, never a fallback)
    vtp_sandbox_url: str | None = None  # a running sandbox (`vtp sandbox`); asks for it too
    vtp_sandbox_size: int = Field(default=300, ge=1)
    vtp_sandbox_companies: int = Field(default=0, ge=0, le=9999)  # generated client companies besides the demo group
    vtp_close_sensor_seconds: int = Field(default=900, ge=30)
    vtp_webhook_sensor_seconds: int = Field(default=15, ge=5, le=3600)
    vtp_automation_sensor_seconds: int = Field(default=15, ge=5, le=3600)
    vtp_polling_sensor_seconds: int = Field(default=300, ge=30, le=86400)

    vtp_retry_backoff_seconds: float = Field(default=_RETRY_DEFAULTS.backoff_s, gt=0)
    vtp_visma_retry_seconds: float = Field(default=_RETRY_DEFAULTS.visma_s, gt=0)
    vtp_state_retry_seconds: float = Field(default=_RETRY_DEFAULTS.state_s, ge=0)
    vtp_tableau_retry_seconds: float = Field(default=_RETRY_DEFAULTS.tableau_s, gt=0)

    @classmethod
    def read(cls) -> EnvSettings:
        """The environment, or a `ConfigError` naming every bad variable in plain words."""
        try:
            return cls()
        except ValidationError as error:
            raise ConfigError(plain_problems(error, lambda loc: str(loc[0]).upper())) from None


class Settings(BaseModel):
    """What the rest of the project uses."""

    home: Path
    state_url: str
    companies: list[CompanySettings]
    tableau: TableauSettings | None
    sandbox: bool = Field(description="True when the bundled sandbox was asked for (VTP_SANDBOX or VTP_SANDBOX_URL)")
    first_month: date = Field(description="The first calendar month that month partitions offer")
    entitlements_path: Path | None = Field(
        default=None, description="YAML mapping of Tableau users and groups to what they may see"
    )
    sandbox_size: int = Field(default=300, description="Supplier invoices of an in-process sandbox")
    sandbox_companies: int = Field(
        default=0, description="Generated client companies the sandbox serves besides the demo group"
    )
    retries: RetrySettings = Field(default_factory=RetrySettings)
    close_sensor_seconds: int = Field(
        default=900, description="How often the month-end close sensor reads the financial periods"
    )
    # A change reaches Tableau after a tick of the webhook (or polling) sensor and one of the
    # automation-condition sensor: on average half of each interval (BENCHMARKS.md, "Freshness").
    webhook_sensor_seconds: int = Field(
        default=15, description="How often the webhook sensor turns notifications into runs"
    )
    automation_sensor_seconds: int = Field(
        default=15, description="How often the automation-condition sensor evaluates the tables' conditions"
    )
    polling_sensor_seconds: int = Field(
        default=300, description="How often the polling sensor asks Visma what changed (a request per "
        "entity and company each tick)"
    )

    extracts_url: str | None = Field(
        default=None, description="Where runs on several machines share the extracts (an fsspec URL such as "
        "s3://bucket/prefix); None keeps them in the local folder only"
    )
    extracts_endpoint_url: str | None = Field(
        default=None, description="The endpoint of an S3-compatible store (MinIO, Ceph, R2) for an s3:// "
        "extracts_url; None asks AWS (or AWS_ENDPOINT_URL)"
    )

    @property
    def extracts_dir(self) -> Path:
        return self.home / "extracts"

    def open_state(self) -> StateDB:
        """The configured state database, with the configured patience for outages."""
        return StateDB(self.state_url, connect_budget_s=self.retries.state_s, backoff_s=self.retries.backoff_s)

    def company(self, company_id: str) -> CompanySettings:
        for company in self.companies:
            if company.company_id == company_id:
                return company
        known = ", ".join(c.company_id for c in self.companies)
        raise ConfigError(f"no company {company_id!r} is configured; configured: {known}")


class StoredSecrets:
    """Credentials from `vtp secrets` (the encrypted store), opened only when one is needed.

    The environment always wins; the store fills what the environment leaves empty. Names:
    `visma/<company_id>/client_id`, `visma/<company_id>/client_secret`, `tableau/pat_secret`,
    `tableau/connected_app_secret_value`.
    """

    def __init__(self, home: Path, state_url: str) -> None:
        self._home, self._state_url = home, state_url
        self._store: SecretStore | None = None

    def get(self, name: str) -> str | None:
        if self._store is None:
            key_file = default_key_file(self._home)
            if not os.environ.get("VTP_SECRET_KEY") and not key_file.exists():
                return None  # no key, so nothing can have been stored
            self._store = SecretStore(StateDB(self._state_url), load_key(key_file))
        return self._store.get(name)


def _tableau_from_env(env: EnvSettings, secrets: StoredSecrets) -> TableauSettings | None:
    if not env.tableau_server_url:
        return None
    return TableauSettings(
        server_url=env.tableau_server_url,
        site=env.tableau_site,
        project=env.tableau_project,
        pat_name=env.tableau_pat_name,
        pat_secret=env.tableau_pat_secret or _secret(secrets, "tableau/pat_secret", env.tableau_pat_name),
        connected_app_client_id=env.tableau_connected_app_client_id,
        connected_app_secret_id=env.tableau_connected_app_secret_id,
        connected_app_secret_value=env.tableau_connected_app_secret_value
        or _secret(secrets, "tableau/connected_app_secret_value", env.tableau_connected_app_client_id),
        username=env.tableau_username,
        deployment=env.tableau_deployment,
        pat_created_on=env.tableau_pat_created_on,
        pat_lifetime_days=env.tableau_pat_lifetime_days,
    )


def _secret(secrets: StoredSecrets, name: str, needed_when: object = True) -> SecretStr | None:
    value = secrets.get(name) if needed_when else None
    return SecretStr(value) if value else None


def _companies_from_env(env: EnvSettings, secrets: StoredSecrets) -> list[CompanySettings]:
    prefix = f"visma/{env.visma_company_id}"
    client_id = env.visma_client_id or secrets.get(f"{prefix}/client_id")
    client_secret = env.visma_client_secret or _secret(secrets, f"{prefix}/client_secret")
    missing = [
        name
        for name, value in (
            ("VISMA_CLIENT_ID", client_id),
            ("VISMA_CLIENT_SECRET", client_secret),
            ("VISMA_TENANT_ID", env.visma_tenant_id),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"Visma settings are incomplete: {', '.join(missing)} not set. Set all three "
            "(VISMA_CLIENT_ID, VISMA_CLIENT_SECRET, VISMA_TENANT_ID; the first two may also come "
            f"from `vtp secrets set {prefix}/...`), or none and VTP_SANDBOX=1 to use the sandbox."
        )
    return [
        CompanySettings(
            company_id=env.visma_company_id,
            client_id=client_id or "",
            client_secret=client_secret or SecretStr(""),
            tenant_id=env.visma_tenant_id or "",
            api_url=env.visma_api_url,
            token_url=env.visma_token_url,
            ipp_company_id=env.visma_ipp_company_id,
        )
    ]


def _from_yaml(
    path: Path, env: EnvSettings, secrets: StoredSecrets
) -> tuple[list[CompanySettings], TableauSettings | None]:
    """Read the several-companies file. Secrets in it may be given as `env:NAME`."""
    document = _yaml_document(path)
    companies_doc = document.get("companies")
    if not isinstance(companies_doc, list) or not companies_doc:
        raise ConfigError(f"VTP_CONFIG file {path}: 'companies' must be a non-empty list")
    companies = []
    for index, item in enumerate(companies_doc):
        where = f"VTP_CONFIG file {path}: companies[{index}]"
        values = {key: _resolve_env_ref(value) for key, value in _mapping(item, where).items()}
        for field in ("client_id", "client_secret"):
            if not values.get(field) and values.get("company_id"):
                values[field] = secrets.get(f"visma/{values['company_id']}/{field}")
        companies.append(_validated(
            CompanySettings, {"api_url": env.visma_api_url, "token_url": env.visma_token_url, **values},
            where,
        ))
    tableau_doc = document.get("tableau")
    if not tableau_doc:
        return companies, _tableau_from_env(env, secrets)
    where = f"VTP_CONFIG file {path}: tableau"
    values = {key: _resolve_env_ref(value) for key, value in _mapping(tableau_doc, where).items()}
    return companies, _validated(TableauSettings, values, where)


def _yaml_document(path: Path) -> dict:
    """The VTP_CONFIG file as a mapping; every way it can be unusable is a `ConfigError`."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"VTP_CONFIG names {path}, which does not exist") from None
    except OSError as exc:
        raise ConfigError(f"VTP_CONFIG file {path} cannot be read ({exc.strerror}); "
                          "point VTP_CONFIG at a readable YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"VTP_CONFIG file {path} is not UTF-8 text (byte {exc.start} is not "
                          "valid); save it as UTF-8") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"VTP_CONFIG file {path} is not valid YAML: {exc}") from None
    if document is None:
        document = {}
    return _mapping(document, f"VTP_CONFIG file {path}")


def _mapping(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} is {_kind(value)}, not a mapping of settings (name: value lines); see the "
            "README's VTP_CONFIG example"
        )
    return value


def _kind(value: object) -> str:
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _validated(model: type[BaseModel], values: dict[str, Any], where: str) -> Any:
    try:
        return model(**{str(key): value for key, value in values.items()})
    except ValidationError as error:
        named = plain_problems(error, lambda loc: f"{where}.{'.'.join(map(str, loc))}")
        raise ConfigError(named) from None


def plain_problems(error: ValidationError, name_of: Callable[[tuple], str]) -> str:
    """A pydantic error in the user's words: which setting, its value, what is wrong, what to do.

    `name_of` turns a field location into the name the user wrote (an environment variable, a
    key in the YAML file). Values of secret fields are never repeated.
    """
    problems = []
    for item in error.errors():
        name = name_of(item["loc"]) if item["loc"] else "the settings"
        shown = "" if "secret" in name.lower() or item["type"] == "missing" else f"={item['input']!r}"
        problems.append(f"{name}{shown}: {_problem(item)}")
    return "; ".join(problems)


_DATE_ERRORS = {"date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact", "date_type"}
_INT_ERRORS = {"int_parsing", "int_type", "int_from_float"}
_FLOAT_ERRORS = {"float_parsing", "float_type"}
_BOUNDS = {
    "greater_than_equal": ("too small; use at least", "ge"),
    "greater_than": ("too small; use more than", "gt"),
    "less_than_equal": ("too large; use at most", "le"),
    "less_than": ("too large; use less than", "lt"),
}


def _problem(item: Any) -> str:
    kind, ctx = item["type"], item.get("ctx", {})
    if kind in _DATE_ERRORS:
        return "not a date; use YYYY-MM-DD"
    if kind in _INT_ERRORS:
        return "not a whole number; use digits only, e.g. 300"
    if kind in _FLOAT_ERRORS:
        return "not a number; use e.g. 30 or 0.5"
    if kind == "literal_error":
        return f"not a known choice; use {ctx['expected']}"
    if kind in _BOUNDS:
        words, bound = _BOUNDS[kind]
        return f"{words} {ctx[bound]}"
    if kind == "string_type":
        return "not text; quote it"
    if kind == "bool_parsing":
        return "not true or false"
    if kind == "missing":
        return "missing; set it"
    if kind == "value_error":
        return str(ctx.get("error", item["msg"]))
    return item["msg"][:1].lower() + item["msg"][1:]


def _resolve_env_ref(value: object) -> object:
    """`env:NAME` in the YAML reads the variable NAME, so that secrets stay out of the file."""
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"the VTP_CONFIG file refers to environment variable {name} "
                              f"(env:{name}), which is not set; set it or change the file")
        return os.environ[name]
    return value


NOTHING_TO_READ = (
    "No Visma company is configured: set VISMA_CLIENT_ID, VISMA_CLIENT_SECRET and VISMA_TENANT_ID "
    "(or VTP_CONFIG for several companies). To read the bundled demo sandbox instead, set "
    "VTP_SANDBOX=1 (or VTP_SANDBOX_URL to a running `vtp sandbox`)."
)


def build_settings(env: EnvSettings | None = None) -> Settings:
    """Settings from the environment (and VTP_CONFIG), or the sandbox when asked for."""
    env = env or EnvSettings.read()
    home = env.vtp_home.expanduser().resolve()
    state_url = env.vtp_state_url or f"sqlite:///{home / 'state.db'}"
    _check_state_url(state_url)
    _check_extracts_url(env.vtp_extracts_url, env.vtp_extracts_endpoint_url)
    secrets = StoredSecrets(home, state_url)
    sandbox = False
    if env.vtp_config:
        companies, tableau = _from_yaml(env.vtp_config, env, secrets)
    elif env.visma_client_id or env.visma_client_secret or env.visma_tenant_id:
        companies, tableau = _companies_from_env(env, secrets), _tableau_from_env(env, secrets)
    elif env.vtp_sandbox or env.vtp_sandbox_url:
        companies = sandbox_companies(env.vtp_sandbox_url, env.vtp_sandbox_companies)
        tableau, sandbox = _tableau_from_env(env, secrets), True
    else:
        # A deployment that lost its credentials must not publish demo numbers: the sandbox is
        # asked for, never fallen back to. No company is read (`resolved_companies` says so);
        # commands that need none (secrets, audit, quarantine) still work.
        companies, tableau = [], _tableau_from_env(env, secrets)
    ids = [c.company_id for c in companies]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"company ids must be unique; got {ids}")
    return Settings(
        home=home,
        state_url=state_url,
        companies=companies,
        tableau=tableau,
        sandbox=sandbox,
        first_month=env.vtp_first_month.replace(day=1),
        entitlements_path=env.vtp_entitlements or (DEMO_ENTITLEMENTS if sandbox else None),
        sandbox_size=env.vtp_sandbox_size,
        sandbox_companies=env.vtp_sandbox_companies,
        close_sensor_seconds=env.vtp_close_sensor_seconds,
        webhook_sensor_seconds=env.vtp_webhook_sensor_seconds,
        automation_sensor_seconds=env.vtp_automation_sensor_seconds,
        polling_sensor_seconds=env.vtp_polling_sensor_seconds,
        extracts_url=env.vtp_extracts_url or None,
        extracts_endpoint_url=env.vtp_extracts_endpoint_url or None,
        retries=RetrySettings(
            backoff_s=env.vtp_retry_backoff_seconds, visma_s=env.vtp_visma_retry_seconds,
            state_s=env.vtp_state_retry_seconds, tableau_s=env.vtp_tableau_retry_seconds,
        ),
    )


def _check_state_url(state_url: str) -> None:
    """VTP_STATE_URL must name SQLite or PostgreSQL; the value is never repeated (a password)."""
    try:
        normalise_url(state_url)
    except StateConfigError as error:
        raise ConfigError(f"VTP_STATE_URL cannot be used: {error}") from None


S3_PROTOCOLS = ("s3", "s3a")


def _check_extracts_url(url: str | None, endpoint_url: str | None) -> None:
    """An endpoint needs an s3:// VTP_EXTRACTS_URL to apply to (whether fsspec can open the URL
    is known when the store is opened: `delivery/extract_store.py`)."""
    if endpoint_url and not url:
        raise ConfigError("VTP_EXTRACTS_ENDPOINT_URL is set but VTP_EXTRACTS_URL is not: set "
                          "VTP_EXTRACTS_URL to the s3://bucket/prefix the extracts are shared through")
    protocol = url.split("://", 1)[0] if url and "://" in url else "file"
    if endpoint_url and protocol not in S3_PROTOCOLS:
        raise ConfigError(f"VTP_EXTRACTS_ENDPOINT_URL applies to s3:// URLs only; VTP_EXTRACTS_URL is {protocol}://")


def generated_company_ids(count: int) -> list[str]:
    """The company ids of the sandbox's `count` generated client companies: client-001, client-002, ..."""
    width = max(3, len(str(count)))
    return [f"{SANDBOX_CLIENT_COMPANY_PREFIX}{number:0{width}d}" for number in range(1, count + 1)]


def sandbox_tenant_ids(generated: int = 0) -> dict[str, str]:
    """Company id -> company tenant id of every company the sandbox serves: the demo group, then
    `generated` client companies."""
    return {**SANDBOX_TENANT_IDS,
            **{company_id: str(uuid.uuid5(_SANDBOX_CLIENT_TENANTS, company_id))
               for company_id in generated_company_ids(generated)}}


def sandbox_companies(base_url: str | None = None, generated: int = 0) -> list[CompanySettings]:
    """Settings for every company of the demo group (and `generated` client companies), pointing
    at the Visma sandbox at `base_url` (default: env VTP_SANDBOX_URL, else http://127.0.0.1:8765)."""
    url = (base_url or os.environ.get("VTP_SANDBOX_URL") or DEFAULT_SANDBOX_URL).rstrip("/")
    return [
        CompanySettings(
            company_id=company_id,
            client_id=SANDBOX_CLIENT_ID,
            client_secret=SecretStr(SANDBOX_CLIENT_SECRET),
            tenant_id=tenant_id,
            api_url=url,
            token_url=f"{url}/connect/token",
            scope=READ_SCOPE,
        )
        for company_id, tenant_id in sandbox_tenant_ids(generated).items()
    ]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return build_settings()
