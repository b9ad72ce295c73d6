"""`manage.py` without DJANGO_SETTINGS_MODULE: production settings unless development is asked for."""

import subprocess
import sys
from pathlib import Path

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
