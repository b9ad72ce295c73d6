from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from organizations.models import ApiKey, Organization
from organizations.selectors import api_key_authenticate

pytestmark = pytest.mark.django_db


def test_create_organization():
    out = StringIO()
    call_command("create_organization", "acme", "--name", "Acme Inc", stdout=out)
    organization = Organization.objects.get(slug="acme")
    assert organization.name == "Acme Inc"
    assert "acme" in out.getvalue()


def test_create_organization_twice_fails_with_one_line_and_changes_nothing():
    call_command("create_organization", "acme", "--name", "First", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_organization", "acme", "--name", "Second", stdout=StringIO())
    assert Organization.objects.get(slug="acme").name == "First"


def test_create_organization_rejects_bad_slug():
    with pytest.raises(CommandError, match="Invalid slug"):
        call_command("create_organization", "Not A Slug", stdout=StringIO())
    assert not Organization.objects.exists()


def test_create_api_key_prints_key_alone_on_last_line(organization):
    out = StringIO()
    call_command("create_api_key", "acme", "--name", "ci", "--read-only", stdout=out)
    raw_key = out.getvalue().strip().splitlines()[-1]
    api_key = api_key_authenticate(raw_key=raw_key)
    assert api_key is not None
    assert api_key.read_only is True
    assert api_key.name == "ci"
    assert raw_key.split() == [raw_key]


def test_create_api_key_for_unknown_organization_fails():
    with pytest.raises(CommandError, match="No organization"):
        call_command("create_api_key", "nope", stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_commands_exit_non_zero_from_the_shell(tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env)
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "nope"], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0
    assert "No organization with slug 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_add_member_makes_a_user_an_admin_then_changes_the_role(organization):
    from django.contrib.auth import get_user_model

    from organizations.models import Membership

    user = get_user_model().objects.create_user(username="ada", password="x")
    out = StringIO()
    call_command("add_member", "acme", "ada", "--role", "admin", stdout=out)
    assert Membership.objects.get(user=user, organization=organization).role == "admin"
    assert out.getvalue().strip() == "ada is now admin of acme."
    call_command("add_member", "acme", "ada", "--role", "viewer", stdout=StringIO())
    assert list(Membership.objects.values_list("role", flat=True)) == ["viewer"]


def test_add_member_fails_with_one_line_for_unknown_organization_or_user(organization):
    from organizations.models import Membership

    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        call_command("add_member", "nope", "ada", stdout=StringIO())
    with pytest.raises(CommandError, match="No user 'ada'"):
        call_command("add_member", "acme", "ada", stdout=StringIO())
    assert not Membership.objects.exists()
