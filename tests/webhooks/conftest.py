import pytest

from webhooks.services import webhook_create


@pytest.fixture
def webhook(organization, receiver):
    return webhook_create(
        organization=organization, name="Receiver", url=receiver.url, events=["application.created"], retry_attempts=3
    )
