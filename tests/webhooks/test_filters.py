"""Content filters: operator by operator, validation naming the path, and fan-out (an event a
filter rejects creates no delivery)."""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError

from webhooks import tasks
from webhooks.filters import MAX_CONDITIONS, MAX_DEPTH, matches, validate_filter
from webhooks.models import Delivery
from webhooks.services import trigger_event, webhook_create, webhook_update

BODY = {
    "type": "application.created",
    "timestamp": "2026-03-02T10:15:00Z",
    "data": {
        "job": {"department": "engineering", "level": 3, "remote": True, "title": "Backend engineer"},
        "salary": 52000.5,
        "tags": ["a", "b"],
        "stages": [{"name": "Screen"}, {"name": "Final interview"}],
        "nothing": None,
    },
}


def check(filter_):
    return matches(validate_filter(filter_), BODY)


#: (filter, whether BODY passes it), operator by operator; tests/webhooks/test_filter_sql.py
#: runs them through the SQL twin too.
OPERATOR_CASES = [
    # $eq (and a plain value as $eq): JSON equality; booleans are not numbers
    ({"data.job.department": {"$eq": "engineering"}}, True),
    ({"data.job.department": "engineering"}, True),
    ({"data.job.department": {"$eq": "sales"}}, False),
    ({"data.job.level": {"$eq": 3.0}}, True),
    ({"data.job.remote": {"$eq": 1}}, False),
    ({"data.job.level": {"$eq": "3"}}, False),
    ({"data.tags": {"$eq": ["a", "b"]}}, True),
    ({"data.nothing": {"$eq": None}}, True),
    ({"data.missing": {"$eq": None}}, False),
    ({"type": "application.created"}, True),
    # $neq: a missing path is "not equal"
    ({"data.job.department": {"$neq": "sales"}}, True),
    ({"data.job.department": {"$neq": "engineering"}}, False),
    ({"data.missing": {"$neq": "x"}}, True),
    ({"data.job.remote": {"$neq": 1}}, True),
    # $in / $nin
    ({"data.job.department": {"$in": ["engineering", "design"]}}, True),
    ({"data.job.department": {"$in": ["sales"]}}, False),
    ({"data.job.department": {"$in": []}}, False),
    ({"data.job.level": {"$in": ["3", True]}}, False),
    ({"data.missing": {"$in": [None]}}, False),
    ({"data.job.department": {"$nin": ["sales"]}}, True),
    ({"data.job.department": {"$nin": ["engineering"]}}, False),
    ({"data.missing": {"$nin": ["x"]}}, True),
    # comparisons: numbers with numbers, strings with strings, nothing else
    ({"data.salary": {"$gt": 52000}}, True),
    ({"data.salary": {"$gt": 52000.5}}, False),
    ({"data.salary": {"$gte": 52000.5}}, True),
    ({"data.salary": {"$lt": 52000.5}}, False),
    ({"data.salary": {"$lte": 52000.5}}, True),
    ({"data.job.level": {"$gt": 2, "$lt": 4}}, True),
    ({"data.job.level": {"$gt": "2"}}, False),
    ({"data.job.department": {"$gt": 1}}, False),
    ({"data.job.remote": {"$gte": 0}}, False),
    ({"data.missing": {"$lt": 10}}, False),
    ({"timestamp": {"$gte": "2026-03-01T00:00:00Z"}}, True),
    ({"timestamp": {"$lt": "2026-03-01T00:00:00Z"}}, False),
    # $exists
    ({"data.job.title": {"$exists": True}}, True),
    ({"data.missing": {"$exists": True}}, False),
    ({"data.missing": {"$exists": False}}, True),
    ({"data.job.title": {"$exists": False}}, False),
    ({"data.nothing": {"$exists": True}}, True),
    ({"data.job.title.deeper": {"$exists": False}}, True),
    # $startsWith: strings only
    ({"data.job.title": {"$startsWith": "Backend"}}, True),
    ({"data.job.title": {"$startsWith": "Frontend"}}, False),
    ({"data.job.level": {"$startsWith": "3"}}, False),
    ({"data.missing": {"$startsWith": ""}}, False),
    # array indexes
    ({"data.stages.1.name": {"$startsWith": "Final"}}, True),
    ({"data.stages.5.name": {"$exists": False}}, True),
    # several keys: all must hold
    ({"data.job.department": "engineering", "data.job.level": {"$gte": 4}}, False),
    # $and / $or, nested
    ({"$and": [{"data.job.level": {"$gte": 3}}, {"data.job.remote": True}]}, True),
    ({"$and": [{"data.job.level": {"$gte": 3}}, {"data.job.remote": False}]}, False),
    ({"$or": [{"data.job.department": "sales"}, {"data.job.level": 3}]}, True),
    ({"$or": [{"data.job.department": "sales"}, {"data.job.level": 4}]}, False),
    (
        {"$or": [{"data.job.department": "sales"}, {"$and": [{"data.job.level": 3}, {"data.tags": ["a", "b"]}]}]},
        True,
    ),
    ({"$and": [{"$or": [{"data.x": 1}, {"data.y": 2}]}, {"data.job.level": 3}]}, False),
]


@pytest.mark.parametrize(("filter_", "expected"), OPERATOR_CASES)
def test_operator_semantics(filter_, expected):
    assert check(filter_) is expected


def test_no_filter_matches_everything():
    assert validate_filter(None) is None and validate_filter({}) is None
    assert matches(None, BODY)


@pytest.mark.parametrize(
    ("filter_", "names"),
    [
        ([], "JSON object"),
        ({"data.job": {"$like": "x"}}, "data.job.$like: unknown operator"),
        ({"$or": [{"data.a": 1}, {"data.b": {"$in": "x"}}]}, "$or[1].data.b.$in: expected a list"),
        ({"$and": []}, "$and: expected a non-empty list"),
        ({"$not": [{"data.a": 1}]}, "$not: unknown operator"),
        ({"job.department": "x"}, 'job.department: a path starts with "type", "timestamp" or "data"'),
        ({"data..a": 1}, "data..a: a path is dot-separated"),
        ({"data.a": {"$exists": "yes"}}, "data.a.$exists: expected true or false"),
        ({"data.a": {"$startsWith": 1}}, "data.a.$startsWith: expected a string"),
        ({"data.a": {"$gt": [1]}}, "data.a.$gt: expected a number or a string"),
        ({"data.a": {"$gt": True}}, "data.a.$gt: expected a number or a string"),
        ({"data.a": {"$eq": 1, "b": 2}}, "data.a.b: unknown operator"),
        ({"data.a": float("nan")}, "no NaN"),
        ({"data.a": {"$in": list(range(101))}}, "at most 100 values"),
        ({"data.a": "x" * 5000}, "at most 4096 bytes"),
        ({f"data.k{i}": 1 for i in range(MAX_CONDITIONS + 1)}, f"at most {MAX_CONDITIONS} conditions"),
    ],
)
def test_invalid_filters_name_the_problem_and_the_path(filter_, names):
    with pytest.raises(ValidationError) as raised:
        validate_filter(filter_)
    assert names in raised.value.messages[0]


def test_nesting_is_bounded():
    deep = {"data.a": 1}
    for _ in range(MAX_DEPTH + 1):
        deep = {"$and": [deep]}
    with pytest.raises(ValidationError, match=f"nest at most {MAX_DEPTH} levels"):
        validate_filter(deep)
    ok = {"data.a": 1}
    for _ in range(MAX_DEPTH):
        ok = {"$and": [ok]}
    assert check(ok) is False


@pytest.mark.django_db
def test_a_rejected_event_creates_no_delivery(organization, receiver):
    engineering = webhook_create(
        organization=organization,
        name="eng",
        url=receiver.url,
        events=["*"],
        filter={"data.job.department": {"$in": ["engineering"]}},
    )
    unfiltered = webhook_create(organization=organization, name="all", url=receiver.url, events=["*"])
    by_type = webhook_create(
        organization=organization,
        name="offers",
        url=receiver.url,
        events=["*"],
        filter={"type": {"$startsWith": "offer."}},
    )
    sales = trigger_event(
        organization=organization, event="application.created", payload={"job": {"id": "job_7", "department": "sales"}}
    )
    assert sales.delivery_count == 1
    assert list(Delivery.objects.filter(event_id=sales.pk).values_list("webhook_id", flat=True)) == [unfiltered.pk]
    eng = trigger_event(
        organization=organization,
        event="application.created",
        payload={"job": {"id": "job_8", "department": "engineering"}},
    )
    assert eng.delivery_count == 2
    assert set(Delivery.objects.filter(event_id=eng.pk).values_list("webhook_id", flat=True)) == {
        engineering.pk,
        unfiltered.pk,
    }
    offer = trigger_event(organization=organization, event="offer.accepted", payload={})
    assert set(Delivery.objects.filter(event_id=offer.pk).values_list("webhook_id", flat=True)) == {
        unfiltered.pk,
        by_type.pk,
    }
    assert tasks.deliver_due() == 5
    # the filter goes away: every event again
    webhook_update(webhook=engineering, filter=None)
    assert trigger_event(organization=organization, event="job.created", payload={}).delivery_count == 2


@pytest.mark.django_db
def test_filters_cost_no_query_of_their_own_at_fan_out(organization, receiver):
    """On PostgreSQL the trigger is one statement, filters evaluated in it; on the ORM path
    they come with the webhooks fan-out reads anyway."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    webhook_create(organization=organization, name="all", url=receiver.url, events=["*"])

    def queries():
        with CaptureQueriesContext(connection) as captured:
            trigger_event(organization=organization, event="job.created", payload={"n": 1})
        return len(captured.captured_queries)

    without = queries()
    webhook_create(organization=organization, name="f", url=receiver.url, events=["*"], filter={"data.n": 1})
    webhook_create(organization=organization, name="g", url=receiver.url, events=["*"], filter={"data.n": 2})
    assert queries() == without
    if connection.vendor == "postgresql":
        assert without == 1
    assert Delivery.objects.count() == 3  # "all" twice, "f" once


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [False, True])
def test_the_timestamp_a_filter_sees_is_the_stored_one(organization, receiver, monkeypatch, batch):
    """Two webhooks split by a time: the one that gets the event is on the side of the
    stored `created_at` (the clock's readings alternate around that time, so two readings
    in a row never agree)."""
    from datetime import UTC, datetime, timedelta

    from django.utils import timezone

    from webhooks.models import Event
    from webhooks.services import trigger_events

    boundary = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
    readings = iter(boundary + timedelta(seconds=-1 if n % 2 == 0 else 1, microseconds=n) for n in range(100))
    before = webhook_create(
        organization=organization,
        name="b",
        url=receiver.url,
        events=["*"],
        filter={"timestamp": {"$lt": "2026-03-02T10:00:00Z"}},
    )
    after = webhook_create(
        organization=organization,
        name="a",
        url=receiver.url,
        events=["*"],
        filter={"timestamp": {"$gte": "2026-03-02T10:00:00Z"}},
    )
    monkeypatch.setattr(timezone, "now", lambda: next(readings))
    if batch:
        trigger_events(organization=organization, events=[{"event": "job.created"}, {"event": "job.opened"}])
    else:
        trigger_event(organization=organization, event="job.created", payload={})
    monkeypatch.undo()
    for event in Event.objects.all():
        (webhook_id,) = Delivery.objects.filter(event=event).values_list("webhook_id", flat=True)
        assert webhook_id == (before.pk if event.created_at < boundary else after.pk)


@pytest.mark.django_db
def test_the_api_validates_shows_and_clears_the_filter(api_client, receiver):
    created = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "n", "url": receiver.url, "events": ["*"], "filter": {"data.a": {"$gte": "x", "$foo": 1}}},
        format="json",
    )
    assert created.status_code == HTTPStatus.BAD_REQUEST
    assert "data.a.$foo: unknown operator" in str(created.json())
    good = {"$or": [{"data.job.department": {"$in": ["engineering"]}}, {"type": "offer.created"}]}
    created = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "n", "url": receiver.url, "events": ["*"], "filter": good},
        format="json",
    )
    assert created.status_code == HTTPStatus.CREATED, created.json()
    url = f"/api/integrations/webhooks/{created.json()['id']}/"
    assert api_client.get(url).json()["filter"] == good
    bad = api_client.patch(url, {"filter": {"$or": [{"data": {"$in": 1}}]}}, format="json")
    assert bad.status_code == HTTPStatus.BAD_REQUEST and "$or[0].data.$in" in str(bad.json())
    assert api_client.get(url).json()["filter"] == good  # nothing changed
    assert api_client.patch(url, {"filter": None}, format="json").json()["filter"] is None
