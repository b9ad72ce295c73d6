from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="portal-index"),
    path("login/", views.PortalLoginView.as_view(), name="portal-login"),
    path("logout/", views.logout_view, name="portal-logout"),
    path("links/<str:token>/", views.open_link, name="portal-link"),
    path("webhooks/", views.webhooks, name="portal-webhooks"),
    path("webhooks/new/", views.webhook_new, name="portal-webhook-new"),
    path("webhooks/<uuid:webhook_id>/", views.webhook_detail, name="portal-webhook"),
    path("webhooks/<uuid:webhook_id>/edit/", views.webhook_edit, name="portal-webhook-edit"),
    path("webhooks/<uuid:webhook_id>/secret/", views.webhook_secret, name="portal-webhook-secret"),
    path("webhooks/<uuid:webhook_id>/test/", views.webhook_test, name="portal-webhook-test"),
    path("webhooks/<uuid:webhook_id>/enable/", views.webhook_enable_view, name="portal-webhook-enable"),
    path("webhooks/<uuid:webhook_id>/recover/", views.webhook_recover, name="portal-webhook-recover"),
    path("webhooks/<uuid:webhook_id>/logs/", views.webhook_logs, name="portal-webhook-logs"),
    path("webhooks/<uuid:webhook_id>/logs/<uuid:log_id>/", views.webhook_log, name="portal-webhook-log"),
    path("webhooks/<uuid:webhook_id>/logs/<uuid:log_id>/replay/", views.webhook_log_replay, name="portal-log-replay"),
    path("integrations/", views.integrations, name="portal-integrations"),
    path("integrations/connect/", views.integration_connect, name="portal-integration-connect"),
    path(
        "integrations/<uuid:integration_id>/reconnect/",
        views.integration_reconnect,
        name="portal-integration-reconnect",
    ),
    path(
        "integrations/<uuid:integration_id>/credentials/",
        views.integration_credentials,
        name="portal-integration-credentials",
    ),
    path("events/", views.events, name="portal-events"),
    path("organization/", views.switch_organization, name="portal-organization"),
]
