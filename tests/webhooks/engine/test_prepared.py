"""PostgreSQL: the engine's hot statements are prepared once per connection and run with a
generic plan (common/db.py `prepared_cursor`), so they are not planned again against every
daily partition of the deliveries and logs; with DATABASE_PREPARED_STATEMENTS off
(`OPTIONS` without `prepare_threshold`) nothing is prepared."""

import pytest
from django.db import connection

from webhooks import tasks
from webhooks.models import Delivery, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"),
]

#: the engine's statements, each by a fragment of its text as PostgreSQL keeps it
ENGINE_STATEMENTS = {
    "claim: leases in flight with the caps": ['"webhooks"."max_concurrency"', "GROUP BY"],
    # the state and attempts as literals: a generic plan keeps the lanes' partial indexes
    "claim: first attempts": ['"attempts" = 0', "\"state\" = 'pending'", 'FOR UPDATE OF "webhook_deliveries" SKIP'],
    "claim: retries": ['"attempts" > 0', "\"state\" = 'pending'", 'FOR UPDATE OF "webhook_deliveries" SKIP'],
    "claim: capped webhooks locked": ['"webhooks"."rate_tat_us"', "FOR UPDATE"],
    "claim: their leases counted": ['"webhook_deliveries"."webhook_id" = ANY($1::uuid[])', "GROUP BY"],
    "claim: the webhooks": ['"webhooks"."url"', '"webhooks"."id" = ANY($1::uuid[])'],
    "claim: the lease": ['UPDATE "webhook_deliveries" SET "lease_token" = $1::uuid'],
    "send: signing keys": ['"webhooks"."previous_secret_expires_at"', "ANY($1::uuid[])"],
    "send: subscriber settings": ['"webhooks"."auth" IS NOT NULL', "ANY($1::uuid[])"],
    "record: states": ['UPDATE "webhook_deliveries" AS d', "FROM unnest(", "RETURNING"],
    "record: logs": ['INSERT INTO "webhook_logs"', "FROM unnest("],
    "record: webhook counters": ['UPDATE "webhooks" SET "success_count"'],
    "record: rollups": ['INSERT INTO "webhook_hourly_stats"', "FROM unnest(", "ON CONFLICT"],
}


def _prepared() -> list[tuple[str, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        return cursor.fetchall()


def _drain_repeatedly(organization, receiver, rounds: int) -> None:
    """`rounds` drains on this connection, each of a claim that has a first attempt and a
    retry, of a webhook with a concurrency cap (so every statement of the claim runs)."""
    webhook_create(
        organization=organization, name="capped", url=receiver.url, events=["application.created"], max_concurrency=50
    )
    for seq in range(rounds):
        trigger_event(organization=organization, event="application.created", payload={"seq": seq})
        if seq:  # the previous round's delivery, due again: the retries' lane has one
            Delivery.objects.filter(state=Delivery.State.SUCCEEDED).update(
                state=Delivery.State.PENDING, next_attempt_at=Delivery.objects.values("created_at")[:1]
            )
        assert tasks.deliver_due() >= 1
    receiver.wait_for(rounds)
    assert WebhookLog.objects.filter(success=True).count() >= rounds


@pytest.fixture
def threshold():
    """Sets `prepare_threshold` in the connection's OPTIONS (None: removed, as with
    DATABASE_PREPARED_STATEMENTS off) for a connection opened anew; restores it after."""
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("prepare_threshold")

    def set_to(value: int | None) -> None:
        options.pop("prepare_threshold", None)
        if value is not None:
            options["prepare_threshold"] = value
        connection.close()  # a connection of this test's own: only its statements are prepared

    yield set_to
    set_to(saved)


def test_the_engine_statements_are_prepared_with_generic_plans(organization, receiver, threshold):
    threshold(5)
    _drain_repeatedly(organization, receiver, rounds=15)
    prepared = _prepared()
    for name, fragments in ENGINE_STATEMENTS.items():
        found = [row for row in prepared if all(fragment in row[0] for fragment in fragments)]
        assert len(found) == 1, (name, [row[0][:200] for row in prepared])
        statement, generic, custom = found[0]
        assert generic > 0, (name, generic, custom, statement)


def test_nothing_is_prepared_with_the_setting_off(organization, receiver, threshold):
    threshold(None)
    _drain_repeatedly(organization, receiver, rounds=15)
    assert _prepared() == []
