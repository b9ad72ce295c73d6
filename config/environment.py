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


# --- logging of management commands -------------------------------------------------------

#: Commands that keep running (or are interactive): their log lines are their output.
LONG_RUNNING_COMMANDS = frozenset({"runserver", "qcluster", "shell", "dbshell", "testserver"})
_MANAGE_PROGRAMS = frozenset({"manage.py", "django-admin"})


def _verbosity(arguments: list[str]) -> int:
    """The `-v`/`--verbosity` value among a command's arguments (Django's default: 1)."""
    verbosity = 1
    for index, argument in enumerate(arguments):
        value = None
        if argument in ("-v", "--verbosity"):
            value = arguments[index + 1] if index + 1 < len(arguments) else None
        elif argument.startswith("--verbosity="):
            value = argument.partition("=")[2]
        elif argument.startswith("-v") and argument[2:].isdigit():
            value = argument[2:]
        if value is not None and value.isdigit():
            verbosity = int(value)
    return verbosity


def command_console_level(argv: list[str]) -> str | None:
    """The console log level for a process started as `argv`, or None for `LOG_LEVEL`.

    A one-shot management command (`manage.py create_organization acme`) prints what it did
    on stdout; INFO log lines on stderr beside it read like errors. So it logs only warnings
    and errors to the console, unless run with `-v 2` or more. Servers, the cluster and
    shells (`LONG_RUNNING_COMMANDS`), and every process that is not `manage.py`/`django-admin`
    (gunicorn, pytest), log at `LOG_LEVEL` as configured.
    """
    if len(argv) < 2:
        return None
    program = Path(argv[0])
    if program.name not in _MANAGE_PROGRAMS and not (program.name == "__main__.py" and program.parent.name == "django"):
        return None
    command = argv[1]
    if command.startswith("-") or command in LONG_RUNNING_COMMANDS:
        return None
    return None if _verbosity(argv[2:]) >= 2 else "WARNING"
