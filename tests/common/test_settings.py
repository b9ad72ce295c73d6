"""Production settings: no default secrets or base URL, the CSRF origin from PUBLIC_BASE_URL,
X-Forwarded-Proto trusted only when asked; the broker is explicit."""

import json
import os
import subprocess
import sys

import pytest

# Settings read from the environment that these tests set themselves.
OWN_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "SECRET_KEY",
    "FERNET_KEYS",
    "PUBLIC_BASE_URL",
    "CSRF_TRUSTED_ORIGINS",
    "TRUST_X_FORWARDED_PROTO",
    "API_DOCS_PUBLIC",
    "ALLOWED_HOSTS",
}
SECRETS = {"SECRET_KEY": "x" * 50, "FERNET_KEYS": "k1,k2", "PUBLIC_BASE_URL": "https://hire.example.com"}

PRODUCTION_CODE = """
import json, django
django.setup()
from django.conf import settings
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory
request = RequestFactory().get("/admin/", HTTP_X_FORWARDED_PROTO="https")
redirect = SecurityMiddleware(lambda r: HttpResponse()).process_request(request)
print(json.dumps({
    "debug": settings.DEBUG,
    "csrf_trusted_origins": settings.CSRF_TRUSTED_ORIGINS,
    "public_base_url": settings.PUBLIC_BASE_URL,
    "is_secure": request.is_secure(),
    "redirects_to": redirect and redirect["Location"],
}))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without our settings and reading no `.env`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    return {**env, "ENV_FILE": "", **extra}


def _import_production(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = clean_env(DJANGO_SETTINGS_MODULE="config.settings.production", ALLOWED_HOSTS="testserver", **extra_env)
    return subprocess.run([sys.executable, "-c", PRODUCTION_CODE], capture_output=True, text=True, env=env)


def production(**extra_env: str) -> dict:
    result = _import_production(extra_env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FERNET_KEYS", "PUBLIC_BASE_URL"])
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_production_refuses_to_start_without_secrets_or_base_url(missing, how):
    extra = {k: v for k, v in SECRETS.items() if k != missing}
    if how == "empty":
        extra[missing] = ""
    result = _import_production(extra)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} must be set" in result.stderr


def test_production_starts_with_secrets_and_hardens():
    assert production(**SECRETS)["debug"] is False


@pytest.mark.parametrize(
    ("public_base_url", "origin"),
    [
        ("https://hire.example.com", "https://hire.example.com"),
        ("https://Hire.Example.com/integrations/", "https://hire.example.com"),
        ("https://hire.example.com:443/", "https://hire.example.com"),
        ("https://hire.example.com:8443/x", "https://hire.example.com:8443"),
        ("http://10.0.0.5:8000", "http://10.0.0.5:8000"),
    ],
)
def test_csrf_trusted_origins_are_the_origin_of_public_base_url(public_base_url, origin):
    result = production(**{**SECRETS, "PUBLIC_BASE_URL": public_base_url})
    assert result["csrf_trusted_origins"] == [origin]


def test_csrf_trusted_origins_extra_origins_are_added_not_replacing():
    result = production(**SECRETS, CSRF_TRUSTED_ORIGINS="https://admin.example.com")
    assert result["csrf_trusted_origins"] == ["https://hire.example.com", "https://admin.example.com"]
    assert "http://127.0.0.1:8000" not in result["csrf_trusted_origins"]


@pytest.mark.parametrize("public_base_url", ["hire.example.com", "ftp://hire.example.com", "https://", "https://h:x/"])
def test_production_refuses_a_public_base_url_that_is_not_an_http_url(public_base_url):
    result = _import_production({**SECRETS, "PUBLIC_BASE_URL": public_base_url})
    assert result.returncode != 0
    assert "PUBLIC_BASE_URL must be an absolute http(s) URL" in result.stderr


def test_x_forwarded_proto_is_not_trusted_by_default():
    result = production(**SECRETS)
    assert result["is_secure"] is False
    # A forged header does not skip the HTTPS redirect either.
    assert result["redirects_to"] == "https://testserver/admin/"


def test_x_forwarded_proto_is_trusted_when_a_proxy_sets_it():
    result = production(**SECRETS, TRUST_X_FORWARDED_PROTO="true")
    assert result["is_secure"] is True
    assert result["redirects_to"] is None


def test_broker_is_configured_explicitly(settings):
    from django.conf import settings as conf

    q = conf.Q_CLUSTER
    assert ("redis" in q) != ("orm" in q)
    assert q["retry"] > q["timeout"]
    if os.environ.get("REDIS_URL"):
        assert q["redis"] == os.environ["REDIS_URL"]
    else:
        assert q["orm"] == "default"
