"""Erasing a data subject: nothing findable is left but the tombstone (which keeps a hash)."""

from __future__ import annotations

import copy
import re
import shlex
from http import HTTPStatus
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.models import ProviderCall
from tests.api_errors import field_errors
from tests.integrations.factories import IntegrationFactory
from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.models import Delivery, Event, SubjectErasure, WebhookLog
from webhooks.schemas import CATALOGUE_EXAMPLES
from webhooks.services import event_type_create, trigger_event, webhook_create
from webhooks.services.erasure import subject_erase, subject_hash

pytestmark = pytest.mark.django_db(transaction=False)
README = Path(__file__).resolve().parents[3] / "README.md"
CANDIDATE = "cand_8841"
EMAIL = "grace.hopper@example.org"
OTHER = {"id": "cand_9902", "email": "katherine.johnson@example.org"}


def _payload(event: str, candidate: dict) -> dict:
    payload = copy.deepcopy(CATALOGUE_EXAMPLES[event])
    payload["candidate"] = {**payload["candidate"], **candidate}
    return payload


def findings(*needles: str) -> list[tuple[str, str]]:
    """(table, column) of every text-castable column of every table holding a needle: the
    database's own catalogue (introspection), not our models, so nothing is left out."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                name = connection.ops.quote_name(column.name)
                for needle in needles:
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} "
                        f"WHERE LOWER(CAST({name} AS TEXT)) LIKE %s",
                        [f"%{needle.lower()}%"],
                    )
                    if cursor.fetchone()[0]:
                        hits.append((table, column.name))
    return hits


@pytest.fixture
def stored(organization, receiver):
    """The subject's data spread over events, deliveries, logs and the call log; plus another candidate's."""
    subject = {"id": CANDIDATE, "email": EMAIL}
    # The receiver echoes what it got: log excerpts hold the payload.
    receiver.responder = lambda received: Reply(200, received.body)
    webhook_create(organization=organization, name="ATS", url=receiver.url + "ats", events=["*"], retry_attempts=0)
    event_type_create(
        organization=organization,
        name="custom.assessment.completed",
        schema={
            "type": "object",
            "properties": {
                "taker": {"type": "object", "properties": {"ref": {"type": "string", "x-subject": "candidate_id"}}}
            },
        },
    )
    trigger_event(
        organization=organization, event="application.created", payload=_payload("application.created", subject)
    )
    trigger_event(organization=organization, event="offer.sent", payload=_payload("offer.sent", subject))
    trigger_event(organization=organization, event="candidate.updated", payload={"candidate_id": CANDIDATE})
    trigger_event(organization=organization, event="custom.assessment.completed", payload={"taker": {"ref": CANDIDATE}})
    trigger_event(organization=organization, event="candidate.created", payload=_payload("candidate.created", OTHER))
    tasks.deliver_due()
    # One delivery still pending (a second webhook, not sent yet): its event is redacted, not deleted.
    late = webhook_create(
        organization=organization, name="Late", url=receiver.url + "late", events=["interview.scheduled"]
    )
    trigger_event(
        organization=organization, event="interview.scheduled", payload=_payload("interview.scheduled", subject)
    )
    integration = IntegrationFactory(organization=organization)
    ProviderCall.objects.create(
        organization=organization,
        integration=integration,
        method="GET",
        path=f"/v1/candidates/{CANDIDATE}?email={EMAIL}",
        endpoint="/v1/candidates/{id}",
        status=200,
    )
    ProviderCall.objects.create(
        organization=organization,
        integration=integration,
        method="GET",
        path=f"/v1/candidates/{OTHER['id']}",
        status=200,
    )
    assert findings(CANDIDATE, EMAIL)  # the data is there to erase
    return late


def test_erasure_leaves_nothing_findable_but_a_hashed_tombstone(organization, stored, other_organization):
    foreign = trigger_event(
        organization=other_organization,
        event="candidate.created",
        payload=_payload("candidate.created", {"id": CANDIDATE}),
    )
    result = subject_erase(organization=organization, candidate_id=CANDIDATE, email=EMAIL, erased_by="user 'dpo'")
    # The other organization's own candidate with the same id is not this subject: it stays.
    assert Event.objects.get(pk=foreign.pk).payload["candidate"]["id"] == CANDIDATE
    Event.objects.filter(pk=foreign.pk).delete()
    assert findings(CANDIDATE, EMAIL) == []
    assert result.deleted["webhook_events"] == 4 and result.deleted["webhook_deliveries"] == 4
    assert result.deleted["webhook_logs"] == 4
    assert result.redacted["webhook_events"] == 1 and result.redacted["integration_provider_calls"] == 1
    tombstone = SubjectErasure.objects.get()
    assert tombstone.erased_by == "user 'dpo'" and tombstone.counts["deleted"] == result.deleted
    assert tombstone.subject_hashes == {
        "candidate_id": subject_hash(organization, "candidate_id", CANDIDATE),
        "email": subject_hash(organization, "email", EMAIL),
    }
    # The other candidate's data is untouched; the pending delivery is still there, redacted.
    assert findings(OTHER["id"], OTHER["email"])
    assert Event.objects.filter(organization=organization, type="candidate.created").count() == 1
    pending = Delivery.objects.get(state=Delivery.State.PENDING, webhook=stored)
    assert pending.event.payload["candidate"]["id"] == "[erased]"
    assert pending.event.payload["candidate"]["email"] == "[erased]"
    assert pending.event.payload["job"]["id"] == CATALOGUE_EXAMPLES["interview.scheduled"]["job"]["id"]
    again = subject_erase(organization=organization, candidate_id=CANDIDATE, email=EMAIL, erased_by="x")
    assert again.deleted == {} and again.redacted == {}


def test_the_readme_command_runs_as_written(organization, stored):
    text = README.read_text()
    commands = re.findall(r"^\$? ?python manage\.py erase_subject .+$", text, re.MULTILINE)
    assert commands, "README documents erase_subject"
    args = shlex.split(commands[0].lstrip("$ "))[2:]
    assert args[:2] == ["erase_subject", "acme"]
    args = [{"cand_311": CANDIDATE, "ada.lovelace@example.com": EMAIL}.get(a, a) for a in args]
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    assert "deleted" in out.getvalue() and "webhook_events 4" in out.getvalue()
    assert findings(CANDIDATE, EMAIL) == []
    assert SubjectErasure.objects.get().erased_by.startswith("erase_subject")
    with pytest.raises(CommandError, match="candidate_id, an email"):
        call_command("erase_subject", "acme")
    with pytest.raises(CommandError, match="No organization"):
        call_command("erase_subject", "nope", "--email", EMAIL)
    with pytest.raises(CommandError, match="--email"):
        call_command("erase_subject", "acme", "--email", "not-an-address")


def test_the_api_erases_and_reports_counts(api_client, stored, read_only_client, other_client):
    body = {"candidate_id": CANDIDATE, "email": EMAIL}
    assert read_only_client.post("/api/data-subjects/erase/", body, format="json").status_code == 403
    response = other_client.post("/api/data-subjects/erase/", body, format="json")
    assert response.status_code == HTTPStatus.OK and response.json()["deleted"] == {}  # not theirs to erase
    assert findings(CANDIDATE, EMAIL)
    response = api_client.post("/api/data-subjects/erase/", body, format="json")
    assert response.status_code == HTTPStatus.OK, response.json()
    assert response.json()["deleted"]["webhook_logs"] == 4
    assert response.json()["erased_by"] == "API key 'test'"
    assert findings(CANDIDATE, EMAIL) == []
    assert not WebhookLog.objects.filter(response_body__contains=CANDIDATE).exists()
    response = api_client.post("/api/data-subjects/erase/", {}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    response = api_client.post("/api/data-subjects/erase/", {"email": "nope"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "email" in field_errors(response)
    assert SubjectErasure.objects.filter(organization=api_client.organization).count() == 1
