import pytest

from tests.webhooks.receiver import Receiver
from webhooks.services import webhook_create


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def webhook(organization, receiver):
    return webhook_create(
        organization=organization, name="Receiver", url=receiver.url, events=["application.created"], retry_attempts=3
    )
