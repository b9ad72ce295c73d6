"""Event contracts: the JSON Schema (draft 2020-12), version and example payload of each
catalogue event, and the helpers that read them (validation, data-subject paths, masking).

The schemas are data: `CATALOGUE_SCHEMAS` below, built from shared definitions
(`DEFINITIONS`: candidate, application, job, stage, interview, offer). Two custom keywords
annotate them (JSON Schema ignores unknown keywords when validating):

- `"x-subject": "candidate_id" | "email"` marks a value that identifies a data subject
  (what `erase_subject` looks for);
- `"x-sensitive": true` marks a value that log views mask.

Version 1 of the catalogue schemas keeps every top-level object optional (payloads sent
before schemas existed stay valid) but types what is there: an object that is present has
its `id`, ids are strings or integers, times are RFC 3339 date-times.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.exceptions import ValidationError as SchemaValidationError

SENSITIVE = "x-sensitive"
SUBJECT = "x-subject"
SUBJECT_KINDS = ("candidate_id", "email")
MASK = "[sensitive]"
#: Bytes a custom event type's schema (as compact JSON) may take.
MAX_SCHEMA_BYTES = 64 * 1024
DIALECT = "https://json-schema.org/draft/2020-12/schema"

FORMAT_CHECKER = FormatChecker(["email"])


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    # RFC 3339 needs a time zone; parse_datetime also refuses impossible dates (ValueError).
    if not isinstance(value, str):
        return True
    parsed = parse_datetime(value)
    return parsed is not None and parsed.tzinfo is not None


_ID = {"type": ["string", "integer"], "minLength": 1, "maxLength": 200}
_TIME = {"type": "string", "format": "date-time"}


def _object(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["id"],
        "properties": {"id": {"$ref": "#/$defs/id"}, **properties},
        "additionalProperties": True,
    }


DEFINITIONS: dict[str, Any] = {
    "id": {**_ID, "description": "An identifier of the hiring platform (string or integer)."},
    "time": {**_TIME, "description": "An RFC 3339 date-time with a time zone."},
    "candidate": _object(
        "The candidate (a data subject: `erase_subject` finds payloads by its id and email).",
        {
            "id": {"$ref": "#/$defs/id", SUBJECT: "candidate_id"},
            "email": {"type": "string", "format": "email", SUBJECT: "email", SENSITIVE: True},
            "first_name": {"type": "string", SENSITIVE: True},
            "last_name": {"type": "string", SENSITIVE: True},
            "phone": {"type": "string", SENSITIVE: True},
            "created_at": {"$ref": "#/$defs/time"},
            "updated_at": {"$ref": "#/$defs/time"},
        },
    ),
    "job": _object(
        "The job.",
        {
            "title": {"type": "string"},
            "department": {"type": "string"},
            "location": {"type": "string"},
            "status": {"type": "string", "enum": ["draft", "open", "closed"]},
            "opened_at": {"$ref": "#/$defs/time"},
            "closed_at": {"$ref": "#/$defs/time"},
        },
    ),
    "stage": _object("A pipeline stage.", {"name": {"type": "string"}, "position": {"type": "integer"}}),
    "application": _object(
        "The application of the candidate to the job.",
        {
            "created_at": {"$ref": "#/$defs/time"},
            "stage": {"$ref": "#/$defs/stage"},
            "source": {"type": "string"},
        },
    ),
    "interview": _object(
        "The interview.",
        {
            "kind": {"type": "string"},
            "starts_at": {"$ref": "#/$defs/time"},
            "ends_at": {"$ref": "#/$defs/time"},
            "location": {"type": "string"},
            "interviewer_ids": {"type": "array", "items": {"$ref": "#/$defs/id"}},
            "feedback": {"type": "string", SENSITIVE: True},
        },
    ),
    "offer": _object(
        "The offer.",
        {
            "status": {"type": "string", "enum": ["draft", "sent", "accepted", "declined"]},
            "salary": {"type": ["number", "string"], SENSITIVE: True},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "start_date": {"type": "string", "format": "date"},
            "sent_at": {"$ref": "#/$defs/time"},
            "responded_at": {"$ref": "#/$defs/time"},
        },
    ),
}

_COMMON_PROPERTIES: dict[str, Any] = {
    "occurred_at": {"$ref": "#/$defs/time", "description": "When it happened on the hiring platform."},
    # The flat spelling older senders use (`{"candidate_id": ...}`) identifies the subject too.
    "candidate_id": {"$ref": "#/$defs/id", SUBJECT: "candidate_id"},
}


def event_schema(title: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A catalogue schema: the given top-level properties (refs into `DEFINITIONS`), all optional."""
    return {
        "$schema": DIALECT,
        "title": title,
        "type": "object",
        "properties": {**{name: {"$ref": f"#/$defs/{ref}"} for name, ref in properties.items()}, **_COMMON_PROPERTIES},
        "additionalProperties": True,
        "$defs": DEFINITIONS,
    }


_CANDIDATE = {"id": "cand_311", "email": "ada.lovelace@example.com", "first_name": "Ada", "last_name": "Lovelace"}
_JOB = {"id": "job_77", "title": "Backend Engineer", "department": "engineering", "location": "Remote"}
_STAGE = {"id": "stage_3", "name": "Technical interview", "position": 3}
_APPLICATION = {"id": "app_1042", "created_at": "2026-03-02T09:15:00Z", "stage": _STAGE, "source": "careers-page"}
_INTERVIEW = {
    "id": "int_58",
    "kind": "technical",
    "starts_at": "2026-03-09T14:00:00Z",
    "ends_at": "2026-03-09T15:00:00Z",
    "interviewer_ids": ["user_12", "user_19"],
}
_OFFER = {"id": "offer_9", "status": "sent", "salary": 85000, "currency": "EUR", "start_date": "2026-05-01"}
_AT = "2026-03-10T10:30:00Z"

_APPLICATION_PARTS = {"application": "application", "candidate": "candidate", "job": "job"}

#: name -> (properties, example) for each catalogue event.
_CATALOGUE: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "application.created": (
        _APPLICATION_PARTS,
        {"application": _APPLICATION, "candidate": _CANDIDATE, "job": _JOB, "occurred_at": _AT},
    ),
    "application.stage_changed": (
        {**_APPLICATION_PARTS, "from_stage": "stage", "to_stage": "stage"},
        {
            "application": _APPLICATION,
            "candidate": _CANDIDATE,
            "job": _JOB,
            "from_stage": {"id": "stage_2", "name": "Phone screen", "position": 2},
            "to_stage": _STAGE,
            "occurred_at": _AT,
        },
    ),
    "application.rejected": (
        _APPLICATION_PARTS,
        {"application": _APPLICATION, "candidate": _CANDIDATE, "job": _JOB, "occurred_at": _AT},
    ),
    "application.hired": (
        _APPLICATION_PARTS,
        {"application": _APPLICATION, "candidate": _CANDIDATE, "job": _JOB, "occurred_at": _AT},
    ),
    **{
        f"interview.{verb}": (
            {**_APPLICATION_PARTS, "interview": "interview"},
            {
                "interview": _INTERVIEW,
                "application": _APPLICATION,
                "candidate": _CANDIDATE,
                "job": _JOB,
                "occurred_at": _AT,
            },
        )
        for verb in ("scheduled", "completed", "cancelled")
    },
    **{
        f"offer.{verb}": (
            {**_APPLICATION_PARTS, "offer": "offer"},
            {
                "offer": {**_OFFER, "status": status},
                "application": _APPLICATION,
                "candidate": _CANDIDATE,
                "job": _JOB,
                "occurred_at": _AT,
            },
        )
        for verb, status in (("created", "draft"), ("sent", "sent"), ("accepted", "accepted"), ("declined", "declined"))
    },
    "candidate.created": ({"candidate": "candidate"}, {"candidate": _CANDIDATE, "occurred_at": _AT}),
    "candidate.updated": ({"candidate": "candidate"}, {"candidate": _CANDIDATE, "occurred_at": _AT}),
    **{
        f"job.{verb}": ({"job": "job"}, {"job": {**_JOB, "status": status}, "occurred_at": _AT})
        for verb, status in (("created", "draft"), ("opened", "open"), ("closed", "closed"))
    },
}

#: The schema of an event registered without one (system events, other apps' events).
GENERIC_SCHEMA: dict[str, Any] = {"$schema": DIALECT, "type": "object", "additionalProperties": True}

CATALOGUE_SCHEMAS: dict[str, dict[str, Any]] = {
    name: event_schema(name, properties) for name, (properties, _) in _CATALOGUE.items()
}
CATALOGUE_EXAMPLES: dict[str, dict[str, Any]] = {name: example for name, (_, example) in _CATALOGUE.items()}


# --- validation -------------------------------------------------------------------------


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _inlined(node: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """`node` with local `$ref`s replaced by their targets (a third faster to validate than
    resolving them on each payload); raises RecursionError-free ValueError on cycles."""
    if depth > 32:
        raise ValueError("recursive $ref")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if not isinstance(target, dict) or rest.keys() & target.keys():
                raise ValueError("a $ref beside keywords of its own target")
            return {**_inlined(target, root, depth + 1), **_inlined(rest, root, depth + 1)}
        return {k: _inlined(v, root, depth + 1) for k, v in node.items() if k != "$defs" or depth > 0}
    if isinstance(node, list):
        return [_inlined(item, root, depth + 1) for item in node]
    return node


@functools.lru_cache(maxsize=512)
def _compiled(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    try:
        schema = _inlined(schema, schema)
    except (ValueError, KeyError, TypeError):  # recursive or unusual refs: resolved as they are
        pass
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


#: id(schema) -> (schema, validator): the catalogue's schema objects live for the process,
#: so their validator is found without serializing the schema each time.
_by_identity: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """The compiled validator of `schema`, cached by its canonical JSON (a changed schema
    compiles anew; catalogue schemas compile once per process)."""
    known = _by_identity.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    validator = _compiled(canonical(schema))
    if any(schema is catalogued for catalogued in CATALOGUE_SCHEMAS.values()):
        _by_identity[id(schema)] = (schema, validator)
    return validator


def json_path(error: SchemaValidationError, root: str = "payload") -> str:
    """`payload.candidate.id`, `payload.interview.interviewer_ids[1]`: where `error` is; a
    missing required property is named itself."""
    path = root
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    required = error.validator_value
    if error.validator == "required" and isinstance(error.instance, dict) and isinstance(required, list):
        missing = [name for name in required if name not in error.instance]
        if missing:
            path += f".{missing[0]}"
    return path


def validate_payload(schema: dict[str, Any], payload: Any, *, root: str = "payload") -> None:
    """A `ValidationError` keyed by the failing JSON path when `payload` breaks `schema`."""
    error = best_match(validator_for(schema).iter_errors(payload))
    if error is not None:
        raise ValidationError({json_path(error, root): f"{error.message[:300]} (JSON Schema `{error.validator}`)."})


def _local_refs_only(node: Any) -> str | None:
    """The first `$ref`/`$dynamicRef` that is not local (`#...`): nothing loads at run time."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"$ref", "$dynamicRef"} and not (isinstance(value, str) and value.startswith("#")):
                return str(value)
            found = _local_refs_only(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _local_refs_only(item)
            if found is not None:
                return found
    return None


def check_schema(schema: Any) -> dict[str, Any]:
    """A custom event type's schema: a draft 2020-12 schema of a JSON object, at most
    `MAX_SCHEMA_BYTES`, only local references; `x-subject` values one of `SUBJECT_KINDS`."""
    if not isinstance(schema, dict):
        raise ValidationError({"schema": "A JSON Schema (draft 2020-12) object."})
    try:
        size = len(canonical(schema).encode("utf-8"))
    except (TypeError, ValueError):
        raise ValidationError({"schema": "The schema must be JSON."}) from None
    if size > MAX_SCHEMA_BYTES:
        raise ValidationError({"schema": f"The schema exceeds {MAX_SCHEMA_BYTES} bytes."})
    if schema.get("$schema", DIALECT) != DIALECT:
        raise ValidationError({"schema": f"Only draft 2020-12 schemas: `$schema` must be {DIALECT!r} or absent."})
    if schema.get("type") != "object":
        raise ValidationError({"schema": 'A payload is a JSON object: the schema needs `"type": "object"`.'})
    remote = _local_refs_only(schema)
    if remote is not None:
        raise ValidationError({"schema": f"Only local references (#/...) are allowed, not {remote[:100]!r}."})
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ValidationError({"schema": f"Not a valid draft 2020-12 schema at {where}: {exc.message[:300]}"}) from None
    bad = sorted({kind for _, kind in _annotated(schema, SUBJECT) if kind not in SUBJECT_KINDS})
    if bad:
        raise ValidationError({"schema": f"`{SUBJECT}` must be one of {', '.join(SUBJECT_KINDS)}; got {bad[0]!r}."})
    try:
        validator_for(schema)
    except Exception:  # a schema check_schema accepts but that cannot compile (e.g. a bad regex)
        raise ValidationError({"schema": "The schema cannot be compiled."}) from None
    return {"$schema": DIALECT, **schema}


# --- annotations: data subjects and sensitive values -------------------------------------


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _annotated(schema: dict[str, Any], keyword: str) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) for each property path (through `properties` and array `items`, `$ref`s
    followed, `*` for an array element) whose subschema carries `keyword`."""

    def walk(node: Any, path: tuple[str, ...], depth: int) -> Iterator[tuple[tuple[str, ...], Any]]:
        if not isinstance(node, dict) or depth > 12:
            return
        node = _resolve(schema, node)
        if keyword in node and path:
            yield path, node[keyword]
        for name, child in (node.get("properties") or {}).items():
            yield from walk(child, (*path, name), depth + 1)
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], (*path, "*"), depth + 1)

    yield from walk(schema, (), 0)


@functools.lru_cache(maxsize=512)
def _paths(schema_json: str, keyword: str) -> tuple[tuple[tuple[str, ...], Any], ...]:
    return tuple(_annotated(json.loads(schema_json), keyword))


def subject_paths(schema: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(path, kind) of the values that identify a data subject (`x-subject`)."""
    return [(path, kind) for path, kind in _paths(canonical(schema), SUBJECT) if kind in SUBJECT_KINDS]


def sensitive_paths(schema: dict[str, Any]) -> list[tuple[str, ...]]:
    return [path for path, flag in _paths(canonical(schema), SENSITIVE) if flag is True]


def values_at(payload: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield payload
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(payload, list):
        for item in payload:
            yield from values_at(item, rest)
    elif isinstance(payload, dict) and head in payload:
        yield from values_at(payload[head], rest)


def _values_at(payload: Any, path: tuple[str, ...]) -> Iterable[Any]:
    """`values_at`; a path through objects alone (at most one value) walked without its
    generators, one per step (masking a logs page walks every path of every payload)."""
    if "*" in path:
        return values_at(payload, path)
    node = payload
    for head in path:
        if not isinstance(node, dict) or head not in node:
            return ()
        node = node[head]
    return (node,)


def _replace_at(payload: Any, path: tuple[str, ...], replacement: Any) -> None:
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(payload, list):
        targets = range(len(payload))
        for index in targets:
            if rest:
                _replace_at(payload[index], rest, replacement)
            else:
                payload[index] = replacement
    elif isinstance(payload, dict) and head in payload:
        if rest:
            _replace_at(payload[head], rest, replacement)
        else:
            payload[head] = replacement


def replaced(payload: Any, paths: list[tuple[str, ...]], replacement: Any) -> Any:
    """A copy of `payload` with the values at `paths` replaced."""
    result = copy.deepcopy(payload)
    for path in paths:
        _replace_at(result, path, replacement)
    return result


def masked(schema: dict[str, Any], payload: Any) -> Any:
    """`payload` with the values its schema marks `x-sensitive` shown as `MASK`."""
    return replaced(payload, sensitive_paths(schema), MASK)


def sensitive_values(schema: dict[str, Any], payload: Any) -> list[str]:
    """The text of each sensitive value in `payload` (to mask where a copy of it appears,
    e.g. a receiver echoing the body), longest first; values shorter than 3 characters are
    left alone (masking "1" everywhere would hide more than it protects)."""
    return sensitive_values_at(sensitive_paths(schema), payload)


def sensitive_values_at(paths: Iterable[tuple[str, ...]], payload: Any) -> list[str]:
    """`sensitive_values` for paths already worked out (once per event type, not per log)."""
    found: set[str] = set()
    for path in paths:
        for value in _values_at(payload, path):
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                text = str(value)
                if len(text) >= 3:
                    found.add(text)
    return sorted(found, key=len, reverse=True)


def mask_text(text: str, values: list[str]) -> str:
    for value in values:
        text = text.replace(value, MASK)
    return text
