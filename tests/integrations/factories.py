import factory

from integrations.models import Integration
from tests.factories import OrganizationFactory


class IntegrationFactory(factory.django.DjangoModelFactory):
    """A ready API-key integration; use services in tests that exercise validation."""

    class Meta:
        model = Integration

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"integration {n}")
    provider = "rippling"
    auth_type = Integration.AuthType.API_KEY
    config = factory.LazyFunction(dict)
    credentials = factory.LazyFunction(lambda: {"api_key": "factory-key"})
    status = Integration.Status.ACTIVE


class OAuthIntegrationFactory(IntegrationFactory):
    provider = "google_calendar"
    auth_type = Integration.AuthType.OAUTH2
    credentials = factory.LazyFunction(dict)
    status = Integration.Status.PENDING
