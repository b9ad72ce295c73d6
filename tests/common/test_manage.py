"""`manage.py` without DJANGO_SETTINGS_MODULE: production settings unless development is asked for."""

import subprocess
import sys
from pathlib import Path

import pytest

from config.environment import command_console_level
from tests.common.test_settings import SECRETS, clean_env

ROOT = Path(__file__).resolve().parents[2]
SHOW_SETTINGS = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, env=clean_env(**env), timeout=60
    )


def test_without_settings_or_debug_manage_py_refuses_to_start_in_one_line():
    result = manage("check")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "config.settings.production" in lines[0]
    assert "SECRET_KEY" in lines[0]
    assert "DEBUG=true" in lines[0]  # says how to ask for development


def test_a_command_other_than_check_refuses_too():
    result = manage("reencrypt_credentials")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_debug_false_is_not_development():
    result = manage("check", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_debug_true_in_the_environment_uses_the_development_settings():
    result = manage("shell", "-c", SHOW_SETTINGS, DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["config.settings.local", "True"]


def test_debug_true_in_the_env_file_uses_the_development_settings(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=true\n")
    result = manage("shell", "-c", SHOW_SETTINGS, ENV_FILE=str(env_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["config.settings.local", "True"]


def test_with_secrets_it_uses_the_production_settings():
    result = manage("diffsettings", "--all", **SECRETS)
    assert result.returncode == 0, result.stderr
    assert "### DEBUG = False" in result.stdout.splitlines()  # "###": the default, False
    assert "SETTINGS_MODULE = 'config.settings.production'" in result.stdout


def test_an_explicit_settings_module_wins_over_debug():
    result = manage("shell", "-c", SHOW_SETTINGS, DEBUG="true", DJANGO_SETTINGS_MODULE="config.settings.test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["config.settings.test", "False"]


# --- one-shot commands log only warnings on the console ---------------------------------


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["manage.py", "run_health_checks"], "WARNING"),
        (["/srv/app/manage.py", "create_organization", "acme"], "WARNING"),
        (["manage.py", "run_health_checks", "-v", "1"], "WARNING"),
        (["manage.py", "run_health_checks", "-v", "2"], None),
        (["manage.py", "run_health_checks", "-v2"], None),
        (["manage.py", "migrate", "--verbosity=3"], None),
        (["manage.py", "prune_webhook_logs", "--verbosity", "2", "--dry-run"], None),
        (["django-admin", "setup_schedules"], "WARNING"),
        (["/venv/lib/python3.11/site-packages/django/__main__.py", "setup_schedules"], "WARNING"),
        (["manage.py", "runserver"], None),
        (["manage.py", "qcluster"], None),
        (["manage.py", "shell", "-c", "1"], None),
        (["manage.py"], None),
        (["manage.py", "--help"], None),
        (["/venv/bin/gunicorn", "config.wsgi"], None),
        (["/venv/lib/python3.11/site-packages/pytest/__main__.py", "tests"], None),
    ],
)
def test_the_console_log_level_of_a_process(argv, level):
    assert command_console_level(argv) == level


def test_a_command_prints_its_summary_on_stdout_and_no_info_lines_on_stderr(tmp_path, receiver):
    """A real `manage.py run_health_checks` in development settings (LOG_LEVEL=INFO): the run
    logs an INFO line, which stays off the console unless asked for with -v 2."""
    env = {"DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "ALLOW_PRIVATE_URLS": "true"}
    assert manage("migrate", "--noinput", **env).returncode == 0
    create = (
        "from organizations.services import organization_create;"
        "from integrations.services import integration_create;"
        "integration_create(organization=organization_create(slug='acme', name='Acme'), name='status',"
        f" provider='custom', auth_type='api_key', config={{'health_check_url': '{receiver.url}', 'category': 'hris'}},"
        " credentials={'api_key': 'key'})"
    )
    shell = manage("shell", "-c", create, **env)
    assert shell.returncode == 0, shell.stderr
    assert " INFO " in shell.stderr  # a shell logs at LOG_LEVEL: the settings do log INFO

    result = manage("run_health_checks", **env)
    assert result.returncode == 0, result.stderr
    assert "Checked 1 integration in" in result.stdout
    assert result.stderr == ""
    verbose = manage("run_health_checks", "-v", "2", **env)
    assert verbose.returncode == 0
    assert "INFO health.services Health run:" in verbose.stderr
