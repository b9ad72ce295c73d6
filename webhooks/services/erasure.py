"""Erasing a data subject (a candidate): every stored payload, log excerpt and request copy
about them, leaving a tombstone (`SubjectErasure`) that keeps counts and a hash, not the id.

What is erased, in this order (docs/WEBHOOKS.md "Candidate data"):

1. Events whose payload is about the subject: a value at a path the event type's schema
   marks `x-subject` equals the candidate id or email, or the payload's text holds the email
   or the id as a JSON string. An event none of whose deliveries is pending is deleted with
   its deliveries and their attempt logs. An event with a pending delivery (it may be in
   flight: a worker holds it) is redacted in place instead, so the delivery still completes
   and nothing a worker writes refers to a deleted row: the subject's values, the values its
   schema marks `x-sensitive`, and any other text holding the id or email become
   `[erased]`.
2. Every other copy: the text and JSON columns (not the encrypted ones) of every model of
   the organization (webhook logs' response bodies, URLs and errors, deliveries' last
   errors, the integrations' provider call log paths, ...), where the id or email appears
   as a whole word, rewritten with `[erased]`.

The tombstone records rows per table (deleted and redacted), when and by whom (a user or
an API key name), and salted SHA-256 hashes of the id and email.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Cast

from common.fields import TolerantEncryptedMixin
from organizations.models import Organization

from ..events import event_definitions
from ..models import Delivery, Event, EventType, SubjectErasure
from ..schemas import replaced as replaced_at
from ..schemas import sensitive_paths, subject_paths

ERASED = "[erased]"
#: Apps whose models hold an organization's data (searched for copies).
DATA_APPS = ("organizations", "integrations", "health", "webhooks")
MAX_SUBJECT_LENGTH = 320


@dataclass
class ErasureResult:
    erasure: SubjectErasure
    deleted: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)


def subject_hash(organization: Organization, kind: str, value: str) -> str:
    return hashlib.sha256(f"{organization.pk}:{kind}:{value}".encode()).hexdigest()


def _clean(candidate_id: Any, email: Any) -> dict[str, str]:
    subject: dict[str, str] = {}
    errors: dict[str, str] = {}
    for kind, value in (("candidate_id", candidate_id), ("email", email)):
        if value is None or value == "":
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            errors[kind] = "A string."
            continue
        text = str(value).strip()
        if not 1 <= len(text) <= MAX_SUBJECT_LENGTH or "\x00" in text:
            errors[kind] = f"1 to {MAX_SUBJECT_LENGTH} characters."
        elif kind == "email" and "@" not in text:
            errors[kind] = "An email address."
        else:
            subject[kind] = text.lower() if kind == "email" else text
    if errors:
        raise ValidationError(errors)
    if not subject:
        raise ValidationError("Give a candidate_id, an email, or both.")
    return subject


def _word(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.@+-]){re.escape(value)}(?![\w@-]|\.\w)", re.IGNORECASE)


def _redact_text(text: str, patterns: list[re.Pattern[str]]) -> str:
    for pattern in patterns:
        text = pattern.sub(ERASED, text)
    return text


def _redact_json(value: Any, patterns: list[re.Pattern[str]]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, patterns)
    if isinstance(value, list):
        return [_redact_json(item, patterns) for item in value]
    if isinstance(value, dict):
        return {key: _redact_json(item, patterns) for key, item in value.items()}
    return value


def _schemas(organization: Organization) -> dict[str, dict[str, Any]]:
    schemas = {name: d.schema for name, d in event_definitions().items()}
    schemas.update(EventType.objects.filter(organization=organization).values_list("name", "schema"))
    return schemas


def _about_subject(organization: Organization, subject: dict[str, str]) -> Q:
    """Events of the organization whose payload is about the subject."""
    query = Q()
    by_path: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for name, schema in _schemas(organization).items():
        for path, kind in subject_paths(schema):
            if kind in subject and "*" not in path:
                by_path.setdefault((path, kind), []).append(name)
    for (path, kind), types in by_path.items():
        lookup = "payload__" + "__".join(path)
        value = subject[kind]
        match = Q(**{f"{lookup}__iexact": value}) if kind == "email" else Q(**{lookup: value})
        if kind == "candidate_id" and value.isdigit():
            match |= Q(**{lookup: int(value)})
        query |= Q(type__in=types) & match
    text = Cast("payload", models.TextField())
    if "email" in subject:
        query |= Q(
            Exists(Event.objects.filter(pk=OuterRef("pk")).annotate(t=text).filter(t__icontains=subject["email"]))
        )
    if "candidate_id" in subject:
        quoted = json.dumps(subject["candidate_id"])
        query |= Q(Exists(Event.objects.filter(pk=OuterRef("pk")).annotate(t=text).filter(t__contains=quoted)))
    return query


def _text_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
        and not isinstance(f, TolerantEncryptedMixin)
        and not f.primary_key
        and not f.choices
    ]


def _scoped(model: type[models.Model], organization: Organization) -> models.QuerySet | None:
    names = {f.name for f in model._meta.concrete_fields}
    if "organization" in names:
        return model._default_manager.filter(organization=organization)
    if "integration" in names:
        return model._default_manager.filter(integration__organization=organization)
    return None


def _redact_copies(organization: Organization, subject: dict[str, str], counts: Counter) -> None:
    patterns = [_word(value) for value in subject.values()]
    for config in DATA_APPS:
        for model in apps.get_app_config(config).get_models():
            if model is SubjectErasure:
                continue
            queryset = _scoped(model, organization)
            text_fields = _text_fields(model)
            if queryset is None or not text_fields:
                continue
            condition = Q()
            annotations = {}
            for f in text_fields:
                column = f.name
                if isinstance(f, models.JSONField):
                    column = f"_erase_{f.name}"
                    annotations[column] = Cast(f.name, models.TextField())
                for value in subject.values():
                    condition |= Q(**{f"{column}__icontains": value})
            for row in queryset.annotate(**annotations).filter(condition).iterator():
                changed = []
                for f in text_fields:
                    old = getattr(row, f.attname)
                    if isinstance(f, models.JSONField):
                        new = _redact_json(old, patterns)
                    else:
                        new = _redact_text(old or "", patterns)[: f.max_length or None] if old else old
                    if new != old:
                        setattr(row, f.attname, new)
                        changed.append(f.name)
                if changed:
                    # Only the columns that held the subject: other writers' fields stay theirs.
                    model._default_manager.filter(pk=row.pk).update(**{name: getattr(row, name) for name in changed})
                    counts[model._meta.db_table] += 1


def _release_keys(organization: Organization, deleted_events: list, subject: dict[str, str], counts: Counter) -> None:
    """PostgreSQL: `webhook_event_keys` (a plain table of the trigger path, no model; the
    events table is partitioned) holds each keyed event's idempotency key. The rows of the
    events deleted above go, and so does every key that names the subject, whichever event
    it holds (that event's own key was redacted above): a later trigger with the old key
    stores a new event, as on SQLite, where the key is the event's column."""
    from webhooks import partitions

    if not partitions.supported(connection):
        return
    patterns = ["%" + re.sub(r"([\\%_])", r"\\\1", value) + "%" for value in subject.values()]
    with connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{partitions.EVENT_KEYS}" k WHERE k.organization_id = %s '  # noqa: S608 - the module's constant
            "AND (k.event_id = ANY(%s::uuid[]) OR k.idempotency_key ILIKE ANY(%s))",
            [organization.pk, [str(pk) for pk in deleted_events], patterns],
        )
        if cursor.rowcount:
            counts[partitions.EVENT_KEYS] += cursor.rowcount


def subject_erase(
    *, organization: Organization, erased_by: str, candidate_id: Any = None, email: Any = None
) -> ErasureResult:
    """Erase what is stored about a candidate (see the module docstring); returns the
    tombstone and the counts. Running it again finds nothing more and counts zeros."""
    subject = _clean(candidate_id, email)
    patterns = [_word(value) for value in subject.values()]
    deleted: Counter = Counter()
    redacted: Counter = Counter()
    schemas = _schemas(organization)
    with transaction.atomic():
        matching = Event.objects.filter(organization=organization).filter(_about_subject(organization, subject))
        pending = Delivery.objects.filter(event=OuterRef("pk"), state=Delivery.State.PENDING)
        # Checked again in the delete itself: a delivery re-armed meanwhile keeps its event.
        idle = list(matching.exclude(Exists(pending)).values_list("pk", flat=True))
        for batch_start in range(0, len(idle), 500):
            _, per_model = (
                Event.objects.filter(pk__in=idle[batch_start : batch_start + 500]).exclude(Exists(pending)).delete()
            )
            for label, count in per_model.items():
                deleted[apps.get_model(label)._meta.db_table] += count
        for event in matching.select_for_update(of=("self",)).only("id", "type", "payload"):
            schema = schemas.get(event.type, {})
            paths = [path for path, kind in subject_paths(schema)] + sensitive_paths(schema)
            payload = _redact_json(replaced_at(event.payload, paths, ERASED), patterns)
            if payload != event.payload:
                Event.objects.filter(pk=event.pk).update(payload=payload)
                redacted[Event._meta.db_table] += 1
        _redact_copies(organization, subject, redacted)
        _release_keys(organization, idle, subject, deleted)
        erasure = SubjectErasure.objects.create(
            organization=organization,
            subject_hashes={kind: subject_hash(organization, kind, value) for kind, value in subject.items()},
            counts={"deleted": dict(deleted), "redacted": dict(redacted)},
            erased_by=erased_by[:200],
        )
    return ErasureResult(erasure=erasure, deleted=dict(deleted), redacted=dict(redacted))
