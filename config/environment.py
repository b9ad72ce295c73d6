"""The optional env file, and which settings module `manage.py` runs with by default.

Development is opt-in: without `DJANGO_SETTINGS_MODULE`, `manage.py` (and `scripts/run.py`)
use the production settings, which refuse to start without their secrets, unless `DEBUG`
is true in the environment or in the env file (`make` writes a `.env` with `DEBUG=true`).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
DEVELOPMENT_SETTINGS = "config.settings.local"
PRODUCTION_SETTINGS = "config.settings.production"


def env_file() -> Path | None:
    """`ENV_FILE` when set (empty: read no file), else `.env` in the project root."""
    value = os.environ.get("ENV_FILE")
    if value is None:
        return BASE_DIR / ".env"
    return Path(value) if value else None


def read_env_file() -> None:
    """Load the env file into `os.environ`; variables already in the environment win."""
    path = env_file()
    if path is not None and path.is_file():
        environ.Env.read_env(path, overwrite=False)


def default_settings_module() -> str:
    """The development settings only when DEBUG is asked for explicitly, else production."""
    read_env_file()
    debug = environ.Env().bool("DEBUG", default=False)
    return DEVELOPMENT_SETTINGS if debug else PRODUCTION_SETTINGS
