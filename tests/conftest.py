"""Shared fixtures. The shipped-corpus assistant uses the index that `make test` builds
(ESTU_DATA_DIR, default ./var); if it is missing or stale it is built here once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def settings() -> Settings:
    data_dir = Path(os.environ.get("ESTU_DATA_DIR", ROOT / "var"))
    if not data_dir.is_absolute():
        data_dir = ROOT / data_dir
    return Settings(data_dir=data_dir, _env_file=None)


@pytest.fixture(scope="session")
def assistant(settings):
    from bot.assistant import Assistant

    return Assistant.load(settings)


@pytest.fixture(scope="session")
def small_settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("small"), corpus_dir=FIXTURES / "corpus_small",
                    _env_file=None)


@pytest.fixture(scope="session")
def small_assistant(small_settings):
    from bot.assistant import Assistant

    return Assistant.load(small_settings)


from tests.live import browser  # noqa: E402,F401  (headless chromium fixture for the browser tests)
