import django_filters

from integrations.models import Integration
from integrations.providers import PROVIDER_CHOICES


class IntegrationFilter(django_filters.FilterSet):
    provider = django_filters.ChoiceFilter(choices=PROVIDER_CHOICES)
    status = django_filters.ChoiceFilter(choices=Integration.Status.choices)
    health_status = django_filters.ChoiceFilter(choices=Integration.HealthStatus.choices)

    class Meta:
        model = Integration
        fields = ["provider", "status", "health_status"]
