"""Fixtures shared by every test folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

OPENAPI_PATH = Path(__file__).parent / "reference" / "visma-net-erp-openapi-2025-04-24.json"


@pytest.fixture(scope="session")
def openapi() -> dict:
    """Visma's own OpenAPI document (a copy of the public 2025-04-24 version): the contract."""
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
