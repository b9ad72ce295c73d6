"""Reads that stay flat as tables grow: hourly rollups (webhooks/rollups.py), keyset
pagination of the logs (common/api/pagination.py CursorPagination) and the indexes both use."""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.api_errors import field_errors
from tests.concurrency import Concurrently
from tests.migrating import latest, migrate_to
from tests.webhooks.helpers import make_due
from tests.webhooks.receiver import Reply
from webhooks import partitions, rollups, selectors, tasks
from webhooks.engine.loop import process
from webhooks.engine.store import claim_due
from webhooks.models import Delivery, Webhook, WebhookHourlyStats, WebhookLog
from webhooks.services import log_replay, trigger_event, webhook_create, webhook_send_test

BASE = "/api/integrations/webhooks/"


def recount() -> dict:
    """The rollups as they should be, counted again from the logs and the deliveries."""
    expected: dict = defaultdict(rollups.HourCounts)
    for webhook_id, created_at, success, duration in WebhookLog.objects.values_list(
        "webhook_id", "created_at", "success", "duration_ms"
    ):
        expected[(webhook_id, rollups.hour_of(created_at))].add_attempt(success=success, duration_ms=duration)
    for delivery in Delivery.objects.filter(delivered_at__isnull=False).select_related("event"):
        latency = max((delivery.delivered_at - delivery.event.created_at).total_seconds() * 1000, 0)
        expected[(delivery.webhook_id, rollups.hour_of(delivery.delivered_at))].add_latency(latency)
    return {key: _rounded(counts.values()) for key, counts in expected.items()}


def stored() -> dict:
    return {
        (row["webhook_id"], row["hour"]): _rounded([row[c] for c in rollups.COLUMNS])
        for row in WebhookHourlyStats.objects.values("webhook_id", "hour", *rollups.COLUMNS)
    }


def _rounded(values):
    return [round(value, 2) for value in values]


def assert_rollups_match() -> None:
    """Counts equal; sums of milliseconds equal to within rounding (each stored value is a
    sum of floats added in another order than the recount's)."""
    have, want = stored(), recount()
    assert have.keys() == want.keys()
    for key, values in want.items():
        assert have[key] == pytest.approx(values, abs=0.05), key


# --- delivered_at and rollups ------------------------------------------------------------


@pytest.mark.django_db
def test_rollups_equal_a_recount_after_mixed_traffic(organization, receiver):
    receiver.responder = lambda r: Reply(status=500 if r.json()["data"].get("n", 0) % 3 == 0 else 200)
    main = webhook_create(organization=organization, name="main", url=receiver.url, events=["*"], retry_attempts=2)
    small = webhook_create(organization=organization, name="small", url=receiver.url, events=["job.opened"])
    for n in range(12):
        trigger_event(
            organization=organization, event="job.opened" if n % 2 else "application.created", payload={"n": n}
        )
    tasks.deliver_due()
    make_due()
    tasks.deliver_due()  # retries (they fail again)
    webhook_send_test(webhook=small)  # test sends go through the engine's write too
    replayed = WebhookLog.objects.filter(webhook=main, success=True).first()
    first_delivered = Delivery.objects.get(pk=replayed.delivery_id).delivered_at
    log_replay(log=replayed)  # succeeds again: counted as an attempt, not as a second delivery
    assert Delivery.objects.get(pk=replayed.delivery_id).delivered_at == first_delivered
    assert WebhookLog.objects.filter(success=False).exists() and WebhookLog.objects.filter(success=True).exists()

    assert_rollups_match()
    succeeded = Delivery.objects.filter(state="succeeded")
    assert succeeded.exists() and not succeeded.filter(delivered_at__isnull=True).exists()
    assert not Delivery.objects.exclude(state="succeeded").filter(delivered_at__isnull=False).exists()
    for webhook in (main, small):
        webhook.refresh_from_db()
        stats = selectors.webhook_stats(webhook=webhook)
        logs = WebhookLog.objects.filter(webhook=webhook)
        assert stats["window_stats"]["attempts"] == logs.count() == stats["attempts"]
        assert stats["window_stats"]["failures"] == logs.filter(success=False).count()
        assert stats["window_stats"]["delivered"] == Delivery.objects.filter(webhook=webhook, state="succeeded").count()


@pytest.mark.django_db
def test_the_hourly_chart_reads_the_rollups_and_equals_the_logs_in_constant_queries(
    organization, receiver, django_assert_num_queries
):
    """The admin's and the portal's 24-hour series come from the rollups: the same counts as
    the logs of each hour (older hours included), in one query whatever the log volume."""
    receiver.responder = lambda r: Reply(status=500 if r.json()["data"]["n"] % 3 == 0 else 200)
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"], retry_attempts=0)
    for n in range(9):
        trigger_event(organization=organization, event="job.opened", payload={"n": n})
    tasks.deliver_due()
    # Move some attempts (logs and their rollups alike) three hours back.
    three_hours_ago = rollups.hour_of(timezone.now() - timedelta(hours=3))
    moved = list(WebhookLog.objects.filter(webhook=webhook).values_list("pk", flat=True)[:4])
    WebhookLog.objects.filter(pk__in=moved).update(created_at=three_hours_ago + timedelta(minutes=1))
    WebhookHourlyStats.objects.filter(webhook=webhook).delete()
    for (webhook_id, hour), values in recount().items():
        WebhookHourlyStats.objects.create(webhook_id=webhook_id, hour=hour, **dict(zip(rollups.COLUMNS, values)))

    with django_assert_num_queries(1) as captured:
        series = selectors.webhook_hourly(webhook=webhook)
    (sql,) = [query["sql"] for query in captured.captured_queries]
    assert "webhook_hourly_stats" in sql and "webhook_logs" not in sql
    assert len(series) == 24
    by_hour = {row["hour"]: (row["successes"], row["failures"]) for row in series}
    logs = WebhookLog.objects.filter(webhook=webhook)
    for hour, (successes, failures) in by_hour.items():
        in_hour = logs.filter(created_at__gte=hour, created_at__lt=hour + timedelta(hours=1))
        assert (successes, failures) == (in_hour.filter(success=True).count(), in_hour.filter(success=False).count())
    assert sum(s + f for s, f in by_hour.values()) == 9
    assert sum(by_hour[three_hours_ago]) == 4


@pytest.mark.django_db(transaction=True)
def test_two_workers_recording_at_once_lose_no_increment(organization, receiver):
    receiver.responder = lambda r: Reply(status=200 if r.json()["data"]["n"] % 2 else 500)
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"], retry_attempts=0)
    for round_ in range(4):
        for n in range(6):
            trigger_event(organization=organization, event="job.opened", payload={"n": n})
        first, second = claim_due(limit=3), claim_due(limit=3)
        assert len(first) == len(second) == 3
        with Concurrently(lambda first=first: process(first), lambda second=second: process(second)):
            pass
        assert_rollups_match()  # after each round
    [row] = WebhookHourlyStats.objects.filter(webhook=webhook)
    assert row.succeeded == 12 and row.failed == 12 and row.delivered == 12


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_one_row_add_up(organization):
    webhook = webhook_create(organization=organization, name="w", url="https://example.com/", events=["*"])
    hour = rollups.hour_of(timezone.now())

    def writer():
        for _ in range(25):
            counts = rollups.HourCounts()
            counts.add_attempt(success=True, duration_ms=3.0)
            counts.add_latency(40.0)
            rollups.add({(webhook.pk, hour): counts})

    with Concurrently(writer, writer):
        pass
    row = WebhookHourlyStats.objects.get(webhook=webhook, hour=hour)
    assert row.succeeded == 50 and row.delivered == 50 and row.duration_ms_sum == 150.0
    assert getattr(row, rollups.DURATION_COLUMNS[rollups.bucket(3.0, rollups.DURATION_BOUNDS_MS)]) == 50


def test_percentile_interpolates_inside_the_bucket():
    bounds = (1.0, 2.0, 4.0)
    assert rollups.percentile([0, 0, 0, 0], bounds, 0.5) is None
    assert rollups.percentile([0, 10, 0, 0], bounds, 0.5) == 1.5  # halfway through (1, 2]
    assert rollups.percentile([10, 0, 10, 0], bounds, 0.95) == pytest.approx(2 + 2 * 0.9)
    assert rollups.percentile([0, 0, 0, 5], bounds, 0.5) == 4.0  # the unbounded bucket: its lower bound
    assert rollups.bucket(1.0, bounds) == 0 and rollups.bucket(1.01, bounds) == 1 and rollups.bucket(9, bounds) == 3


@pytest.mark.django_db
def test_stats_run_constant_queries(api_client, organization, webhook, receiver, django_assert_max_num_queries):
    for n in range(5):
        trigger_event(organization=organization, event="application.created", payload={"n": n})
    tasks.deliver_due()
    api_client.get(f"{BASE}{webhook.pk}/stats/")  # records the key's first use
    # auth + the webhook, the rollups, pending and failed deliveries (each counted to a cap)
    with django_assert_max_num_queries(5):
        assert api_client.get(f"{BASE}{webhook.pk}/stats/?window=30d").json()["window_stats"]["attempts"] == 5


@pytest.mark.django_db
def test_delivery_counts_in_stats_stop_at_the_cap(organization, webhook, receiver, monkeypatch):
    receiver.responder = lambda r: Reply(status=500)
    webhook.retry_attempts = 0
    webhook.save(update_fields=["retry_attempts"])
    for n in range(3):
        trigger_event(organization=organization, event="application.created", payload={"n": n})
    tasks.deliver_due()
    assert Delivery.objects.filter(state="failed").count() == 3
    assert selectors.webhook_stats(webhook=webhook)["failed_deliveries"] == 3
    monkeypatch.setattr(selectors, "STATS_COUNT_CAP", 2)
    assert selectors.webhook_stats(webhook=webhook)["failed_deliveries"] == 2


# --- cursor pagination ---------------------------------------------------------------------


def _log(webhook, delivery, created_at, **fields):
    return WebhookLog(
        organization_id=webhook.organization_id,
        webhook=webhook,
        delivery=delivery,
        event_type=fields.get("event_type", "application.created"),
        attempt=1,
        request_url=webhook.url,
        success=fields.get("success", True),
        created_at=created_at,
    )


@pytest.fixture
def history(organization, webhook):
    trigger_event(organization=organization, event="application.created", payload={})
    delivery = Delivery.objects.get()
    start = timezone.now() - timedelta(hours=2)
    # 30 rows, several sharing a timestamp: the id breaks the tie.
    rows = [_log(webhook, delivery, start + timedelta(seconds=n // 3), success=n % 4 != 0) for n in range(30)]
    WebhookLog.objects.bulk_create(rows)
    return webhook, delivery, start


@pytest.mark.django_db
def test_cursor_pages_are_stable_under_inserts(api_client, history):
    webhook, delivery, start = history
    original = set(WebhookLog.objects.values_list("pk", flat=True))
    body = api_client.get(f"{BASE}{webhook.pk}/logs/?page_size=7").json()
    seen = [row["id"] for row in body["results"]]
    inserted = set()
    while body["next"]:
        # New attempts arrive between page fetches: newer ones, and one with the timestamp
        # of the row the next page starts after.
        fresh = [_log(webhook, delivery, timezone.now()), _log(webhook, delivery, start + timedelta(seconds=9))]
        WebhookLog.objects.bulk_create(fresh)
        inserted |= {str(row.pk) for row in fresh}
        body = api_client.get(body["next"]).json()
        seen += [row["id"] for row in body["results"]]
    assert len(seen) == len(set(seen))  # no duplicates
    assert {str(pk) for pk in original} <= set(seen)  # no gaps
    assert set(seen) - {str(pk) for pk in original} <= inserted
    times = list(WebhookLog.objects.filter(pk__in=seen).order_by("-created_at", "-id").values_list("pk", flat=True))
    assert [str(pk) for pk in times] == seen  # newest first, the id breaking ties


@pytest.mark.django_db
def test_cursor_pages_keep_their_filters(api_client, history):
    webhook, _, start = history
    url = f"{BASE}{webhook.pk}/logs/"
    params = {"page_size": 4, "success": "false", "since": (start + timedelta(seconds=2)).isoformat()}
    body, seen = api_client.get(url, params).json(), []
    while True:
        seen += body["results"]
        if not body["next"]:
            break
        body = api_client.get(body["next"]).json()
    expected = WebhookLog.objects.filter(webhook=webhook, success=False, created_at__gte=start + timedelta(seconds=2))
    assert sorted(row["id"] for row in seen) == sorted(str(pk) for pk in expected.values_list("pk", flat=True))
    assert all(not row["success"] for row in seen)


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["nope", "e30", "WyJ4IiwieSJd", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwiYSJd", "%%%"])
def test_an_invalid_cursor_is_a_json_400(api_client, history, cursor):
    webhook, _, _ = history
    response = api_client.get(f"{BASE}{webhook.pk}/logs/", {"cursor": cursor})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"].startswith("application/problem+json") or response.json()
    assert "cursor" in field_errors(response)


@pytest.mark.django_db
def test_deep_cursor_pages_run_constant_queries(api_client, history, django_assert_max_num_queries):
    webhook, _, _ = history
    body = api_client.get(f"{BASE}{webhook.pk}/logs/?page_size=5").json()
    for _ in range(3):
        with django_assert_max_num_queries(3):  # auth + the webhook, one page (no COUNT)
            body = api_client.get(body["next"]).json()
        assert len(body["results"]) == 5


@pytest.mark.django_db
def test_logs_of_another_organizations_webhook_stay_hidden(api_client, other_organization, receiver):
    other = webhook_create(organization=other_organization, name="theirs", url=receiver.url, events=["*"])
    trigger_event(organization=other_organization, event="job.opened", payload={})
    tasks.deliver_due()
    assert WebhookLog.objects.filter(webhook=other).exists()
    assert api_client.get(f"{BASE}{other.pk}/logs/").status_code == HTTPStatus.NOT_FOUND
    assert api_client.get(f"{BASE}{other.pk}/stats/").status_code == HTTPStatus.NOT_FOUND


# --- indexes -------------------------------------------------------------------------------


def _indexes(table: str) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name: spec["columns"] for name, spec in constraints.items() if spec["index"] or spec["unique"]}


@pytest.mark.django_db
def test_no_redundant_single_column_indexes():
    # `delivery_leased` is partial (pending, leased rows only): the claim counts each webhook's
    # requests in flight with it (webhooks/engine/flow.py); it is not the FK's full index.
    deliveries = [cols for name, cols in _indexes("webhook_deliveries").items() if name != "delivery_leased"]
    assert ["event_id"] not in deliveries and ["webhook_id"] not in deliveries
    # On PostgreSQL the unique key holds the partition key too (webhooks/partitions.py).
    unique = ["event_id", "webhook_id"] + (["created_at"] if connection.vendor == "postgresql" else [])
    assert unique in deliveries and ["webhook_id", "state", "created_at"] in deliveries
    logs = _indexes("webhook_logs").values()
    assert ["webhook_id"] not in logs
    assert ["webhook_id", "event_type", "created_at"] in logs
    assert ["webhook_id"] not in _indexes("webhook_hourly_stats").values()


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: ask whether the index serves
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _uses(index: str, plan: str) -> bool:
    """The plan scans `index`, or on a partitioned table (webhook_logs, webhooks/partitions.py)
    the index each partition holds for it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits i JOIN pg_class child ON child.oid = i.inhrelid "
            "JOIN pg_class parent ON parent.oid = i.inhparent WHERE parent.relname = %s",
            [index],
        )
        names = {index, *(row[0] for row in cursor.fetchall())}
    return any(name in plan for name in names)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN output is PostgreSQL's")
def test_the_logs_pages_and_stats_use_their_indexes(history, organization, receiver):
    webhook, delivery, start = history
    # Other webhooks' rows, so that the planner sees the webhook-led indexes are selective: the
    # webhook read holds 100 rows of 3,100 (with a third of the rows, scanning the created_at
    # index and filtering was as cheap, and the plan flipped between runs).
    for n in range(4):
        other = webhook_create(organization=organization, name=f"other {n}", url=receiver.url, events=["*"])
        rows = [
            _log(other, delivery, start + timedelta(seconds=i), event_type=f"e{i % 7}", success=i % 10 != 3)
            for i in range(1000 if n < 3 else 100)
        ]
        WebhookLog.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhook_logs")
    order = ("-created_at", "-id")
    page = selectors.webhook_log_list(webhook=other).order_by(*order)
    assert _uses("log_webhook_created", _plan(page[:51]))
    assert _uses("log_webhook_failed", _plan(selectors.webhook_log_list(webhook=other, success=False)[:51]))
    assert _uses("log_webhook_event", _plan(selectors.webhook_log_list(webhook=other, event="e3")[:51]))
    deep = page.filter(created_at__lte=start + timedelta(seconds=5)).exclude(
        created_at=start + timedelta(seconds=5), pk__gte=uuid.uuid4()
    )
    assert _uses("log_webhook_created", _plan(deep[:51]))
    assert _uses("webhook_hourly_stats_unique", _plan(WebhookHourlyStats.objects.filter(webhook=webhook)))
    # The API's page, a statement written out (selectors.webhook_log_page): the same indexes.
    key = (start + timedelta(seconds=5), uuid.uuid4())
    assert _uses("log_webhook_created", _page_plan(webhook=other))
    assert _uses("log_webhook_created", _page_plan(webhook=other, after=key))
    assert _uses("log_webhook_failed", _page_plan(webhook=other, success=False, after=key))
    assert _uses("log_webhook_event", _page_plan(webhook=other, event="e3"))


def _page_plan(**given) -> str:
    with CaptureQueriesContext(connection) as captured:
        selectors.webhook_log_page(limit=51, **given)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {captured.captured_queries[-1]['sql']}")
        return "\n".join(row[0] for row in cursor.fetchall())


# --- migration 0006 on a populated database ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_backfills_rollups_from_existing_logs(organization):
    old = migrate_to([("webhooks", "0005_webhook_name_unique_url_length")])
    try:
        OldWebhook, OldEvent = old.get_model("webhooks", "Webhook"), old.get_model("webhooks", "Event")
        OldDelivery, OldLog = old.get_model("webhooks", "Delivery"), old.get_model("webhooks", "WebhookLog")
        now = timezone.now()
        webhooks = [
            OldWebhook.objects.create(organization_id=organization.pk, name=f"w{n}", url="https://a.test/", secret="x")
            for n in range(2)
        ]
        logs = []
        for n in range(40):
            hook = webhooks[n % 2]
            event = OldEvent.objects.create(organization_id=organization.pk, type="job.opened")
            OldEvent.objects.filter(pk=event.pk).update(created_at=now - timedelta(hours=n, minutes=2))
            event.refresh_from_db()
            succeeded = n % 5 != 0
            delivery = OldDelivery.objects.create(
                organization_id=organization.pk,
                event=event,
                webhook=hook,
                state="succeeded" if succeeded else "failed",
                finished_at=now - timedelta(hours=n),
            )
            logs.append(
                OldLog(
                    organization_id=organization.pk,
                    webhook=hook,
                    delivery=delivery,
                    event_type="job.opened",
                    message_id="m",
                    attempt=1,
                    request_url=hook.url,
                    duration_ms=0.5 * (n + 1),
                    success=succeeded,
                    created_at=now - timedelta(hours=n, minutes=1),
                )
            )
        OldLog.objects.bulk_create(logs)
        migrate_to([("webhooks", "0009_scale_reads")])
        # Checked with today's models: later migrations add columns to these tables.
        migrate_to(latest())
        succeeded = Delivery.objects.filter(state="succeeded")
        assert succeeded.count() == 32 and not succeeded.filter(delivered_at__isnull=True).exists()
        assert all(d.delivered_at == d.finished_at for d in succeeded)
        assert WebhookHourlyStats.objects.count() > 20
        assert_rollups_match()
        stats = selectors.webhook_stats(webhook=Webhook.objects.get(name="w0"), window="7d")
        assert stats["window_stats"]["attempts"] == 20 and stats["window_stats"]["failures"] == 4
    finally:
        migrate_to(latest())


# --- the bench data loader -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_load_bench_data_loads_the_split_and_its_rollups():
    from django.core.management import call_command

    call_command("load_bench_data", "--logs", "400", stdout=open(os.devnull, "w"))
    hooks = Webhook.objects.filter(organization__slug="bench")
    counts = sorted((WebhookLog.objects.filter(webhook=hook).count() for hook in hooks), reverse=True)
    assert len(counts) == 10 and sum(counts) == 400 and counts[0] == 356  # 89%
    assert WebhookLog.objects.filter(success=False).count() == 40  # 10%
    assert Delivery.objects.count() == 400 and not Delivery.objects.filter(state="pending").exists()
    assert_rollups_match()
    big = hooks.order_by("-success_count").first()
    assert big.success_count + big.failure_count == 356
    stats = selectors.webhook_stats(webhook=big, window="30d")
    assert stats["window_stats"]["attempts"] == 356 and stats["window_stats"]["p95_latency_ms"] is not None
    if partitions.is_partitioned():  # every day loaded has its partition: none in the default
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{partitions.DEFAULT}"')
            assert cursor.fetchone()[0] == 0
        assert len(partitions.partitions()) >= 31


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [(["--logs", "0"], "--logs and --days must be 1 or more."), (["--webhooks", "11"], "--webhooks must be 1 to 10.")],
)
def test_load_bench_data_refuses_bad_input(args, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("load_bench_data", *args)


@pytest.mark.django_db
def test_load_bench_data_refuses_an_existing_organization(organization):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="exists already"):
        call_command("load_bench_data", "--organization", organization.slug)
    assert not WebhookLog.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("size", ["0", "-3", "many"])
def test_a_bad_page_size_of_the_logs_is_a_json_400(api_client, history, size):
    webhook, _, _ = history
    response = api_client.get(f"{BASE}{webhook.pk}/logs/", {"page_size": size})
    assert response.status_code == HTTPStatus.BAD_REQUEST and "page_size" in field_errors(response)


@pytest.mark.django_db
def test_a_large_page_size_of_the_logs_is_capped(api_client, history):
    webhook, _, _ = history
    body = api_client.get(f"{BASE}{webhook.pk}/logs/", {"page_size": "100000"}).json()
    assert len(body["results"]) == 30 and body["next"] is None
