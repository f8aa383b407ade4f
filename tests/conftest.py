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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
async def pg_url():
    """A fresh, empty PostgreSQL database for one test (dropped afterwards), as a SQLAlchemy URL; the test is
    skipped with a clear reason where PostgreSQL is not running on 127.0.0.1 (CI machines run it)."""
    import uuid

    try:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except Exception:  # noqa: BLE001
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (CI machines run it)")
    name = f"estu_test_{uuid.uuid4().hex[:10]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()
