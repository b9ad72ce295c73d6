import pytest
from django.db import close_old_connections

from tests.cluster import ClusterProcess
from webhooks.services import webhook_create


@pytest.fixture
def webhook(organization, receiver):
    return webhook_create(
        organization=organization, name="Receiver", url=receiver.url, events=["application.created"], retry_attempts=3
    )


@pytest.fixture
def clusters():
    """Start real django-q2 clusters (`clusters(**env)`); all are killed after the test."""
    started: list[ClusterProcess] = []

    def start(**env):
        cluster = ClusterProcess(**env).start()
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.kill()
    close_old_connections()
