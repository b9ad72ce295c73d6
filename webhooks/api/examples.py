"""Request examples of the webhooks and events API, shown in /api/schema/ (Swagger UI, ReDoc).

tests/common/test_schema_examples.py sends each one to its endpoint and expects it accepted;
event examples use types of the catalogue (webhooks/events.py).
"""

from drf_spectacular.utils import OpenApiExample

from webhooks.schemas import CATALOGUE_EXAMPLES

EVENT_TRIGGER = [
    OpenApiExample(
        "A new application",
        value={
            "event": "application.created",
            "payload": CATALOGUE_EXAMPLES["application.created"],
            "idempotency_key": "application.created/app_1042",
        },
        description="A repeated `idempotency_key` returns the first event and sends nothing new.",
        request_only=True,
    ),
    OpenApiExample(
        "An accepted offer",
        value={
            "event": "offer.accepted",
            "payload": CATALOGUE_EXAMPLES["offer.accepted"],
        },
        request_only=True,
    ),
]
EVENT_BATCH = [
    OpenApiExample(
        "Three events, two with idempotency keys",
        value={
            "events": [
                {
                    "event": "application.created",
                    "payload": {"application_id": "app_1043", "candidate_id": "cand_312", "job_id": "job_77"},
                    "idempotency_key": "application.created/app_1043",
                },
                {
                    "event": "application.created",
                    "payload": {"application_id": "app_1044", "candidate_id": "cand_313", "job_id": "job_77"},
                    "idempotency_key": "application.created/app_1044",
                },
                {"event": "job.closed", "payload": {"job_id": "job_12"}},
            ]
        },
        description="Each item gets its own result (created, repeat or error) at its index; "
        "invalid items are reported and the valid ones stored, in one transaction.",
        request_only=True,
    ),
]
WEBHOOK_CREATE = [
    OpenApiExample(
        "Two events",
        value={
            "name": "ATS sync",
            "url": "https://hooks.example.com/ats",
            "events": ["application.created", "offer.accepted"],
            "retry_attempts": 5,
        },
        request_only=True,
    ),
    OpenApiExample(
        "Every event, with a header of your own",
        value={
            "name": "Audit log",
            "url": "https://audit.example.com/hiring",
            "events": ["*"],
            "headers": {"X-Team": "people-ops"},
        },
        request_only=True,
    ),
]
WEBHOOK_UPDATE = [
    OpenApiExample(
        "Replace the subscription",
        value={
            "name": "ATS sync",
            "url": "https://hooks.example.com/ats",
            "events": ["application.created", "application.hired"],
            "retry_attempts": 3,
            "is_active": True,
        },
        request_only=True,
    ),
]
WEBHOOK_PATCH = [
    OpenApiExample(
        "Re-enable a disabled webhook",
        value={"is_active": True},
        description="Also resets `consecutive_failures`.",
        request_only=True,
    ),
    OpenApiExample("Change the events", value={"events": ["offer.sent", "offer.accepted"]}, request_only=True),
    OpenApiExample(
        "Only engineering jobs, reshaped",
        value={
            "filter": {"data.job.department": {"$in": ["engineering"]}},
            "transform": "{application: data.application_id, job: data.job.id, kind: type}",
        },
        description="The filter drops other events at fan-out; the transform's result is sent as `data`.",
        request_only=True,
    ),
]
RECOVER = [
    OpenApiExample(
        "Re-send one day's failed deliveries",
        value={"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00Z"},
        request_only=True,
    ),
]

ASSESSMENT_SCHEMA = {
    "type": "object",
    "required": ["candidate", "score"],
    "properties": {
        "candidate": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "x-subject": "candidate_id"},
                "email": {"type": "string", "format": "email", "x-subject": "email", "x-sensitive": True},
            },
        },
        "score": {"type": "integer", "minimum": 0, "maximum": 100, "x-sensitive": True},
        "completed_at": {"type": "string", "format": "date-time"},
    },
}
EVENT_TYPE_CREATE = [
    OpenApiExample(
        "An assessment result",
        value={
            "name": "custom.assessment.completed",
            "description": "A candidate finished a coding assessment.",
            "schema": ASSESSMENT_SCHEMA,
            "version": 1,
            "example": {"candidate": {"id": "cand_311"}, "score": 87, "completed_at": "2026-03-04T16:00:00Z"},
            "retention_days": 30,
        },
        request_only=True,
    )
]
EVENT_TYPE_PATCH = [
    OpenApiExample(
        "Deprecate",
        value={"deprecated": True},
        description="Still delivered; flagged in the catalogue.",
        request_only=True,
    )
]
SUBJECT_ERASE = [
    OpenApiExample(
        "By candidate id and email",
        value={"candidate_id": "cand_311", "email": "ada.lovelace@example.com"},
        description="Removes every stored payload, log excerpt and request copy about the candidate.",
        request_only=True,
    )
]
