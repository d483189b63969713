"""Where a resource's secret comes from, shown to Dagster instead of the secret (promise 6).

Dagster shows every resource's configuration in its UI, so a secret is never a field's value.
An environment variable becomes `dg.EnvVar(NAME)`: the UI shows the name, and Dagster reads the
value when a run or tick starts. A secret kept in the VTP_CONFIG file or in `vtp secrets` is
named by that place, and the resource reads it there when it needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import dagster as dg
import yaml
from pydantic import Field, SecretStr

from visma_tableau_pipeline.settings import ConfigError

ENV_REFERENCE = "env:"  # in the VTP_CONFIG file, `env:NAME` reads the variable NAME


class SecretSource(dg.Config):
    """Where one secret is read; exactly one of the three is set."""

    env_var: str | None = Field(
        default=None, repr=False,  # holds the value once Dagster has read the variable
        description="dg.EnvVar: the environment variable that holds it (Dagster reads it at run time)",
    )
    vtp_secrets: str | None = Field(default=None, description="its name in `vtp secrets`, the encrypted store")
    config_file: str | None = Field(default=None, description="the VTP_CONFIG file that holds it")

    def value(self, stored: Callable[[str], str | None], key: str, company_id: str | None) -> SecretStr:
        """The secret: `stored(name)` reads `vtp secrets`; `key` of company `company_id` (None: of
        the file's `tableau:` section) finds it in the VTP_CONFIG file."""
        if self.env_var is not None:
            return SecretStr(self.env_var)
        if self.vtp_secrets:
            found = stored(self.vtp_secrets)
            if not found:
                raise ConfigError(f"`vtp secrets` no longer holds {self.vtp_secrets}: store it again with "
                                  f"`vtp secrets set {self.vtp_secrets}`")
            return SecretStr(found)
        if self.config_file:
            return _from_config_file(Path(self.config_file), key, company_id)
        raise ConfigError(f"no source is configured for {key}")


def from_config_file(path: Path, key: str, company_id: str | None) -> SecretSource | None:
    """How the VTP_CONFIG file gives `key` of a company (None: of `tableau:`): by an environment
    variable (`env:NAME`), in the file itself, or not at all (None)."""
    written = config_file_entry(path, company_id).get(key)
    if not written:
        return None
    if isinstance(written, str) and written.startswith(ENV_REFERENCE):
        return SecretSource(env_var=dg.EnvVar(written.removeprefix(ENV_REFERENCE)))
    return SecretSource(config_file=str(path))


def config_file_entry(path: Path, company_id: str | None) -> dict:
    """The mapping of one company (None: the `tableau:` section) as written in the VTP_CONFIG
    file, or {} when there is none. Settings have checked the file when the definitions loaded."""
    written = path.stat()
    document = _config_document(path, written.st_mtime_ns, written.st_size)
    if company_id is None:
        entry = document.get("tableau")
    else:
        entry = next((item for item in document.get("companies") or []
                      if isinstance(item, dict) and item.get("company_id") == company_id), None)
    return dict(entry) if isinstance(entry, dict) else {}


@lru_cache(maxsize=8)
def _config_document(path: Path, mtime_ns: int, size: int) -> dict:
    """The VTP_CONFIG file parsed, once per version of it (a changed file is read again).

    The definitions ask it for every company's secret: parsed each time, a file of 200
    companies took about a minute per code-location load (BENCHMARKS.md, "Many companies").
    """
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _from_config_file(path: Path, key: str, company_id: str | None) -> SecretStr:
    written = config_file_entry(path, company_id).get(key)
    if not isinstance(written, str) or not written or written.startswith(ENV_REFERENCE):
        where = f"companies[{company_id}]" if company_id else "tableau"
        raise ConfigError(f"VTP_CONFIG file {path}: {where}.{key} is no longer written in the file as it was "
                          "when the code location loaded; reload the code location")
    return SecretStr(written)
