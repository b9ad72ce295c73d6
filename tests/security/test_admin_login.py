"""Admin login is rate-limited by django-axes: after LOGIN_FAILURE_LIMIT (5) failures a
username+IP is locked out for the cool-off, even with the right password."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "the-right-password-9"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(username="boss", email="boss@example.com", password=PASSWORD)


def attempt(client, password: str, *, username: str = "boss", ip: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_login_limits_are_configured():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_right_password_logs_in(client, staff):
    response = attempt(client, PASSWORD)
    assert response.status_code == HTTPStatus.FOUND
    assert logged_in(client)


def test_sixth_attempt_is_refused_even_with_the_right_password(client, staff):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = attempt(client, "wrong")
        assert response.status_code in {HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS}
        assert not logged_in(client)
    response = attempt(client, PASSWORD)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert not logged_in(client)
    assert PASSWORD.encode() not in response.content


def test_four_failures_then_the_right_password_logs_in(client, staff):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "wrong")
    assert attempt(client, PASSWORD).status_code == HTTPStatus.FOUND
    assert logged_in(client)


def test_lockout_is_per_username_and_ip(client, staff, django_user_model):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, "wrong")
    # The same user from another address, and another user from the locked address, still log in.
    assert attempt(client, PASSWORD, ip="198.51.100.9").status_code == HTTPStatus.FOUND
    client.logout()
    django_user_model.objects.create_superuser(username="other", email="o@example.com", password=PASSWORD)
    assert attempt(client, PASSWORD, username="other").status_code == HTTPStatus.FOUND


def test_lockout_ends_after_the_cool_off(client, staff):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, "wrong")
    assert attempt(client, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME)
    assert attempt(client, PASSWORD).status_code == HTTPStatus.FOUND
    assert logged_in(client)
