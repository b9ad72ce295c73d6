"""The optional env file, the strict reader of the environment, and which settings module
`manage.py` runs with by default.

Development is opt-in: without `DJANGO_SETTINGS_MODULE`, `manage.py` (and `scripts/run.py`)
use the production settings, which refuse to start without their secrets, unless `DEBUG`
is true in the environment or in the env file (`make` writes a `.env` with `DEBUG=true`).
"""

from __future__ import annotations

import builtins
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

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


_TRUE = {"true", "on", "ok", "y", "yes", "1"}
_FALSE = {"false", "off", "n", "no", "0", ""}
_KINDS = {bool: "true or false", int: "an integer", float: "a number"}
NOTSET = environ.Env.NOTSET


class InvalidSetting(ImproperlyConfigured):
    """A variable is set to a value that is not valid for it (the message names it)."""


def _kind(cast: Any) -> str:
    if isinstance(cast, list) and cast:
        return f"a comma-separated list of {_KINDS.get(cast[0], 'values').removeprefix('an ').removeprefix('a ')}s"
    return _KINDS.get(cast, "valid")


class Env(environ.Env):
    """django-environ's `Env`, strict: a variable whose value does not parse as its type (an
    integer, a number, a boolean: true/false, yes/no, on/off, 1/0), is out of its range or
    not one of its choices raises `ImproperlyConfigured` with one sentence naming the
    variable (`InvalidSetting`), and `manage.py` prints it as one line (`Error: ...`) and
    exits 1.

    django-environ alone lets `int("abc")` escape as a traceback and reads any unknown
    boolean (`DEBUG=ture`) as false.
    """

    def get_value(self, var, cast=None, default=NOTSET, parse_default=False):
        raw = self.ENVIRON.get(var)
        if cast is bool and raw is not None and raw.strip().lower() not in _TRUE | _FALSE:
            raise InvalidSetting(f"{var}={raw!r} is not {_kind(bool)}.")
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except (TypeError, ValueError):
            raise InvalidSetting(f"{var}={raw!r} is not {_kind(cast)}.") from None

    def int(self, var, default=NOTSET, *, minimum: builtins.int | None = None):
        return self._bounded(var, super().int(var, default=default), minimum=minimum)

    def float(self, var, default=NOTSET, *, minimum: builtins.float | None = None, positive: bool = False):
        return self._bounded(var, super().float(var, default=default), minimum=minimum, positive=positive)

    def list(self, var, cast=None, default=NOTSET, *, minimum: builtins.float | None = None):
        values: builtins.list[Any] = super().list(var, cast=cast, default=default)
        for value in values if minimum is not None else ():
            self._bounded(var, value, minimum=minimum)
        return values

    def db(self, var="DATABASE_URL", default=NOTSET, engine=None):
        config = super().db(var, default=default, engine=engine)
        if config.get("ENGINE") not in self.DB_SCHEMES.values():
            # Never the value itself: it may hold a password.
            scheme = str(self.ENVIRON.get(var, default)).partition(":")[0]
            raise InvalidSetting(
                f"{var} has an unknown scheme {scheme!r}: use sqlite:///path or postgres://user@host:5432/name."
            )
        return config

    def choice(self, var, choices: Iterable[str], default: str) -> str:
        """A case-insensitive choice, returned upper-cased (log levels)."""
        value = self.str(var, default=default).strip().upper()
        allowed = [choice.upper() for choice in choices]
        if value not in allowed:
            raise InvalidSetting(f"{var}={value!r} is not one of {', '.join(allowed)}.")
        return value

    def _bounded(self, var: str, value: Any, *, minimum: builtins.float | None = None, positive: bool = False) -> Any:
        if value is None:  # unset, with default None: the app's own default applies
            return value
        raw = self.ENVIRON.get(var, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidSetting(f"{var}={raw!r} is not a finite number.")
        if positive and not value > 0:
            raise InvalidSetting(f"{var}={raw!r} must be greater than 0.")
        if minimum is not None and value < minimum:
            raise InvalidSetting(f"{var}={raw!r} must be at least {minimum}.")
        return value


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
