"""Settings from the environment: a bad value stops `manage.py` at start with one line naming
the variable (config/environment.py `Env`), and every setting is documented in README.md."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common.test_settings import clean_env

ROOT = Path(__file__).resolve().parents[2]

SHOW = (
    "import json; from webhooks import app_settings as w; from integrations import app_settings as i; "
    "from health import app_settings as h; from common import app_settings as c; "
    "print(json.dumps([w.request_timeout(), w.max_payload_bytes(), w.retry_delays(), w.user_agent(), "
    "i.http_timeout(), h.max_response_bytes(), c.max_json_depth()]))"
)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env(**{"DEBUG": "true", **env}),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("WEBHOOKS_TIMEOUT", "abc", "is not a number"),
        ("WEBHOOKS_TIMEOUT", "0", "must be greater than 0"),
        ("WEBHOOKS_MAX_PAYLOAD_BYTES", "256k", "is not an integer"),
        ("WEBHOOKS_RETRY_DELAYS", "5,soon,60", "is not a comma-separated list of numbers"),
        ("HEALTH_CHECK_TIMEOUT", "-1", "must be greater than 0"),
        ("INTEGRATIONS_HTTP_TIMEOUT", "ten", "is not an integer"),
        ("API_MAX_JSON_DEPTH", "0", "must be at least 1"),
        ("Q_WORKERS", "two", "is not an integer"),
        ("API_DOCS_PUBLIC", "maybe", "is not true or false"),
        ("LOG_LEVEL", "loud", "is not one of DEBUG, INFO"),
    ],
)
def test_a_bad_value_stops_the_start_with_one_line_naming_the_variable(variable, value, says):
    result = manage("check", **{variable: value})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: config.settings.local: ")
    assert variable in lines[0] and says in lines[0], lines[0]
    assert "set DEBUG=true" not in lines[0]  # the hint is for missing production secrets only


def test_a_bad_debug_value_is_named_too():
    result = manage("check", DEBUG="ture")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DEBUG='ture' is not true or false" in lines[0]


def test_a_bad_database_url_is_named_without_its_password():
    result = manage("check", DATABASE_URL="postgress://app:hunter2-secret@db:5432/app")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL has an unknown scheme 'postgress'" in lines[0]
    assert "hunter2" not in result.stderr


def test_good_values_from_the_environment_reach_the_apps():
    result = manage(
        "shell",
        "-c",
        SHOW,
        WEBHOOKS_TIMEOUT="2.5",
        WEBHOOKS_MAX_PAYLOAD_BYTES="1000",
        WEBHOOKS_RETRY_DELAYS="1,2",
        WEBHOOKS_USER_AGENT="Acme-Hooks/2",
        INTEGRATIONS_HTTP_TIMEOUT="7",
        HEALTH_CHECK_MAX_RESPONSE_BYTES="2048",
        API_MAX_JSON_DEPTH="8",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [2.5, 1000, [1.0, 2.0], "Acme-Hooks/2", 7.0, 2048, 8]


def test_unset_values_give_the_apps_defaults():
    result = manage("shell", "-c", SHOW)
    assert result.returncode == 0, result.stderr
    timeout, payload, delays, agent, http_timeout, health_bytes, depth = json.loads(result.stdout.splitlines()[-1])
    assert (timeout, payload, http_timeout, health_bytes, depth) == (15.0, 256 * 1024, 10.0, 1024 * 1024, 32)
    assert delays[:2] == [5.0, 300.0] and agent.startswith("IntegrationFramework-Webhooks/")


def setting_names() -> tuple[set[str], set[str]]:
    """(names the settings modules read from the environment, names the apps' app_settings read)."""
    from_env = set()
    for module in (ROOT / "config" / "settings").glob("*.py"):
        from_env |= set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', module.read_text()))
    from_apps = set()
    for module in ROOT.glob("*/app_settings.py"):
        from_apps |= set(re.findall(r'\b(?:setting|setting_int|_int|_str)\(\s*"([A-Z][A-Z0-9_]+)"', module.read_text()))
    return from_env, from_apps


def test_every_setting_of_the_apps_can_be_set_from_the_environment():
    from_env, from_apps = setting_names()
    assert len(from_apps) > 30
    assert from_apps <= from_env, sorted(from_apps - from_env)


def test_every_setting_is_documented_in_the_readme():
    from_env, from_apps = setting_names()
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in from_env | from_apps if f"`{name}`" not in readme)
    assert not undocumented


@pytest.mark.parametrize("level", ["ERROR", "DEBUG"])
def test_q_log_level_sets_the_level_django_q2_logs_at(level):
    """`Q_LOG_LEVEL` reaches the logger django-q2 writes to ("django-q"), whatever `LOG_LEVEL` is."""
    code = (
        "import logging; from django_q.conf import logger; "
        "print(logging.getLevelName(logger.getEffectiveLevel()), logger.isEnabledFor(logging.INFO))"
    )
    result = manage("shell", "-c", code, Q_LOG_LEVEL=level, LOG_LEVEL="INFO")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == [level, str(level == "DEBUG")]
