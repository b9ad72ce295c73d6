"""Production settings refuse to start without secrets; the broker is explicit."""

import os
import subprocess
import sys

import pytest


def _import_production(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FERNET_KEYS"}}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.production", **extra_env})
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "extra_env",
    [{}, {"SECRET_KEY": "x" * 50}, {"FERNET_KEYS": "k1"}, {"SECRET_KEY": "x" * 50, "FERNET_KEYS": ""}],
)
def test_production_refuses_to_start_without_secrets(extra_env):
    result = _import_production(extra_env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_production_starts_with_secrets_and_hardens():
    result = _import_production({"SECRET_KEY": "x" * 50, "FERNET_KEYS": "k1,k2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_broker_is_configured_explicitly(settings):
    from django.conf import settings as conf

    q = conf.Q_CLUSTER
    assert ("redis" in q) != ("orm" in q)
    assert q["retry"] > q["timeout"]
    if os.environ.get("REDIS_URL"):
        assert q["redis"] == os.environ["REDIS_URL"]
    else:
        assert q["orm"] == "default"
