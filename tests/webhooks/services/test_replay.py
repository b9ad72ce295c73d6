"""Sending now: test events, replays and recovery."""

from http import HTTPStatus

import pytest

from webhooks.engine.store import claim_due
from webhooks.services import replay

pytestmark = pytest.mark.django_db


def test_test_endpoint_is_not_taken_by_a_background_worker(api_client, webhook, receiver, monkeypatch):
    real_send_now = replay._send_now

    def worker_claims_everything_first(delivery):
        assert claim_due(limit=50) == []  # a background deliver_due finds nothing to take
        return real_send_now(delivery)

    monkeypatch.setattr(replay, "_send_now", worker_claims_everything_first)
    response = api_client.post(f"/api/integrations/webhooks/{webhook.pk}/test/")
    assert response.status_code == HTTPStatus.OK and response.json()["success"] is True
