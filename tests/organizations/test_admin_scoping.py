"""Staff who are not superusers see and change only their organizations' rows in the admin.

A matrix over every registered admin model of the project's apps: the changelist holds only
the member's rows, another organization's change page is "not found", actions and
foreign-key choices are scoped too, viewers only read, and superusers still see all.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from health.models import ClusterHeartbeat, HealthCheck
from organizations.admin_scoping import OrganizationScopedAdmin
from organizations.models import Membership, Organization
from tests.factories import UserFactory
from tests.security.tenants import make_tenant
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db

APPS = {"organizations", "integrations", "health", "webhooks"}
REGISTERED = sorted(
    (model for model in admin.site._registry if model._meta.app_label in APPS), key=lambda m: m._meta.label
)


def _staff(username: str, organization: Organization, role: str):
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=APPS))
    Membership.objects.create(user=user, organization=organization, role=role)
    return user


@pytest.fixture
def world():
    mine, theirs = make_tenant("mine"), make_tenant("theirs")
    for tenant in (mine, theirs):
        HealthCheck.objects.create(integration=tenant.integration, status="healthy", checked_at=timezone.now())
        Membership.objects.create(user=UserFactory(), organization=tenant.organization, role="viewer")
    ClusterHeartbeat.objects.create(name="worker-1", beat_at=timezone.now())
    return mine.organization, theirs.organization


def _organization_of(model_admin, obj) -> Organization | None:
    lookup = model_admin._lookup()
    if lookup is None:
        return None
    org_id = type(obj)._default_manager.filter(pk=obj.pk).values_list(lookup, flat=True).get()
    return Organization.objects.get(pk=org_id)


def _rows_of(model, organization):
    model_admin = admin.site._registry[model]
    lookup = model_admin._lookup()
    return model._default_manager.filter(**{lookup: organization.pk})


def test_every_registered_admin_is_scoped():
    assert len(REGISTERED) >= 10
    for model in REGISTERED:
        assert isinstance(admin.site._registry[model], OrganizationScopedAdmin), model._meta.label


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_a_member_sees_only_their_organizations_rows(client, world, model):
    mine, theirs = world
    client.force_login(_staff("member", mine, "admin"))
    model_admin = admin.site._registry[model]
    info = model._meta.app_label, model._meta.model_name
    changelist = client.get(reverse("admin:{}_{}_changelist".format(*info)))
    if model_admin._lookup() is None:  # no organization's: superusers only
        assert changelist.status_code == HTTPStatus.FORBIDDEN
        return
    assert changelist.status_code == HTTPStatus.OK
    shown = list(changelist.context["cl"].queryset)
    assert shown and {_organization_of(model_admin, obj) for obj in shown} == {mine}

    foreign = _rows_of(model, theirs).first()
    assert foreign is not None, f"no {model._meta.label} row of the other organization"
    page = client.get(reverse("admin:{}_{}_change".format(*info), args=[foreign.pk]))
    assert page.status_code in (HTTPStatus.NOT_FOUND, HTTPStatus.FOUND)
    if page.status_code == HTTPStatus.FOUND:
        assert page.url == reverse("admin:index")
    assert client.get(reverse("admin:{}_{}_change".format(*info), args=[shown[0].pk])).status_code == HTTPStatus.OK


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_a_superuser_still_sees_everything(admin_client, world, model):
    info = model._meta.app_label, model._meta.model_name
    changelist = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert changelist.status_code == HTTPStatus.OK
    assert changelist.context["cl"].result_count == model._default_manager.count()


def test_foreign_key_choices_and_actions_are_scoped(client, world):
    mine, theirs = world
    client.force_login(_staff("member", mine, "admin"))
    add = client.get(reverse("admin:webhooks_webhook_add"))
    assert list(add.context["adminform"].form.fields["organization"].queryset) == [mine]

    theirs_hook = Webhook.objects.get(organization=theirs)
    response = client.post(
        reverse("admin:webhooks_webhook_changelist"),
        {"action": "disable", "_selected_action": [str(theirs_hook.pk)], "select_across": "1"},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert Webhook.objects.get(pk=theirs_hook.pk).is_active is True
    assert Webhook.objects.get(organization=mine).is_active is False  # select_across: every row it may change

    form = client.post(
        reverse("admin:webhooks_webhook_add"),
        {"organization": str(theirs.pk), "name": "x", "url": "https://a.test/", "events": '["*"]', "retry_attempts": 1},
    )
    assert form.status_code == HTTPStatus.OK and "organization" in form.context["adminform"].form.errors
    assert not Webhook.objects.filter(name="x").exists()


def test_a_viewer_reads_but_cannot_change(client, world):
    mine, _ = world
    client.force_login(_staff("viewer", mine, "viewer"))
    webhook = Webhook.objects.get(organization=mine)
    url = reverse("admin:webhooks_webhook_change", args=[webhook.pk])
    assert client.get(url).status_code == HTTPStatus.OK
    response = client.post(url, {"name": "renamed", "url": webhook.url, "events": '["*"]', "retry_attempts": 1})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert client.get(reverse("admin:webhooks_webhook_add")).status_code == HTTPStatus.FORBIDDEN
    client.post(
        reverse("admin:webhooks_webhook_changelist"), {"action": "disable", "_selected_action": [str(webhook.pk)]}
    )
    assert Webhook.objects.get(pk=webhook.pk).is_active is True
    assert Webhook.objects.get(pk=webhook.pk).name == webhook.name
