"""Custom event types: an organization's own `custom.*` events with their JSON Schemas.

They are the organization's alone: only it lists, subscribes to and triggers them (for any
other organization the name is unknown, and the API answers 404). `event_contract` is the
one lookup of "what is this event's schema" for catalogue and custom events alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from common.exceptions import ConflictError
from common.text import quoted
from organizations.models import Organization

from ..events import CUSTOM_NAMESPACE, event_definition, is_custom_event
from ..models import EventType
from ..schemas import GENERIC_SCHEMA, check_schema, validate_payload

NAME_PATTERN = re.compile(rf"{re.escape(CUSTOM_NAMESPACE)}[a-z0-9_]+(\.[a-z0-9_]+)*")
EVENT_TYPE_FIELDS = {"name", "description", "schema", "version", "example", "deprecated", "retention_days"}
MAX_RETENTION_DAYS = 3650


@dataclass(frozen=True)
class EventContract:
    """What an event's payloads must be, wherever the event is defined."""

    name: str
    schema: dict[str, Any]
    version: int
    deprecated: bool
    retention_days: int | None
    custom: bool


def event_contract(name: Any, *, organization: Organization | None) -> EventContract | None:
    """The contract of catalogue event `name`, or of `organization`'s custom type `name`;
    None when neither exists (a custom type of another organization does not)."""
    if not isinstance(name, str):
        return None
    if is_custom_event(name):
        if organization is None:
            return None
        row = EventType.objects.filter(organization=organization, name=name).first()
        if row is None:
            return None
        return EventContract(name, row.schema, row.version, row.deprecated, row.retention_days, custom=True)
    definition = event_definition(name)
    if definition is None:
        return None
    return EventContract(
        name,
        definition.schema or GENERIC_SCHEMA,
        definition.version,
        definition.deprecated,
        definition.retention_days,
        custom=False,
    )


def custom_event_names(*, organization: Organization) -> set[str]:
    return set(EventType.objects.filter(organization=organization).values_list("name", flat=True))


def _validated(fields: dict[str, Any], instance: EventType | None) -> dict[str, Any]:
    unknown = set(fields) - EVENT_TYPE_FIELDS
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    cleaned = dict(fields)
    errors: dict[str, Any] = {}
    if "name" in fields:
        name = fields["name"]
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > 100:
            errors["name"] = (
                f"{CUSTOM_NAMESPACE}<name>: lowercase letters, digits and _ in dot-separated parts, at most 100 "
                f"characters (e.g. {CUSTOM_NAMESPACE}assessment.completed); the namespace keeps it apart from "
                "catalogue and system events."
            )
    schema = instance.schema if instance is not None else None
    if "schema" in fields:
        try:
            schema = cleaned["schema"] = check_schema(fields["schema"])
        except ValidationError as exc:
            errors.update(exc.message_dict)
    elif instance is None:
        errors["schema"] = "Required: a JSON Schema (draft 2020-12) of the payload."
    if "version" in fields and not (isinstance(fields["version"], int) and 1 <= fields["version"] <= 1_000_000):
        errors["version"] = "A positive integer."
    if "retention_days" in fields and fields["retention_days"] is not None:
        if not (isinstance(fields["retention_days"], int) and 1 <= fields["retention_days"] <= MAX_RETENTION_DAYS):
            errors["retention_days"] = f"Between 1 and {MAX_RETENTION_DAYS}, or null."
    example = fields.get("example", instance.example if instance is not None else {})
    if schema is not None and "schema" not in errors and example:
        if not isinstance(example, dict):
            errors["example"] = "A JSON object."
        else:
            try:
                validate_payload(schema, example, root="example")
            except ValidationError as exc:
                errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _name_taken(name: str) -> ConflictError:
    return ConflictError(
        f"An event type named {quoted(name)} already exists in this organization.",
        errors={"name": ["Already exists."]},
    )


def event_type_create(*, organization: Organization, **fields: Any) -> EventType:
    cleaned = _validated(fields, None)
    if "name" not in cleaned:
        raise ValidationError({"name": "Required."})
    try:
        with transaction.atomic():
            return EventType.objects.create(organization=organization, **cleaned)
    except IntegrityError:
        raise _name_taken(cleaned["name"]) from None


def event_type_update(*, event_type: EventType, **fields: Any) -> EventType:
    if "name" in fields and fields["name"] != event_type.name:
        raise ValidationError({"name": "An event type's name cannot change (webhooks subscribe to it by name)."})
    fields.pop("name", None)
    cleaned = _validated(fields, event_type)
    for name, value in cleaned.items():
        setattr(event_type, name, value)
    event_type.save(update_fields=[*cleaned, "updated_at"])
    return event_type


def event_type_delete(*, event_type: EventType) -> None:
    """Delete it; webhooks still listing it stop matching anything (events of it can no
    longer be triggered). Stored events and deliveries stay (retention prunes them)."""
    event_type.delete()
