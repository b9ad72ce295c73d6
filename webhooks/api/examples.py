"""Request examples of the webhooks and events API, shown in /api/schema/ (Swagger UI, ReDoc).

tests/common/test_schema_examples.py sends each one to its endpoint and expects it accepted;
event examples use types of the catalogue (webhooks/events.py).
"""

from drf_spectacular.utils import OpenApiExample

EVENT_TRIGGER = [
    OpenApiExample(
        "A new application",
        value={
            "event": "application.created",
            "payload": {"application_id": "app_1042", "candidate_id": "cand_311", "job_id": "job_77"},
            "idempotency_key": "application.created/app_1042",
        },
        description="A repeated `idempotency_key` returns the first event and sends nothing new.",
        request_only=True,
    ),
    OpenApiExample(
        "An accepted offer",
        value={
            "event": "offer.accepted",
            "payload": {"offer_id": "off_9", "application_id": "app_1042", "accepted_at": "2026-03-02T10:15:00Z"},
        },
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
