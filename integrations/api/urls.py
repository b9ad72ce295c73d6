from django.urls import re_path

from common.api.handlers import browser_page
from common.api.routers import OptionalSlashRouter
from integrations.calendar.notifications import google_notification, microsoft_notification

from .callback import oauth_callback, oauth_start
from .hiring import INTERVIEW_ID_PATTERN, ChannelListView, FreeBusyView, InterviewEventView, MessageView
from .issues import ConnectionIssueViewSet
from .proxy import IntegrationProxyView
from .views import UUID_PATTERN, IntegrationViewSet

router = OptionalSlashRouter()
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("integration-issues", ConnectionIssueViewSet, basename="integration-issue")

# Pages for people: their own HTML answers (errors included) stay HTML under /api/.
urlpatterns = [
    re_path(r"^integrations/oauth/callback/?$", browser_page(oauth_callback), name="integration-oauth-callback"),
    re_path(r"^integrations/oauth/start/?$", browser_page(oauth_start), name="integration-oauth-start"),
    re_path(
        rf"^integrations/(?P<pk>{UUID_PATTERN})/proxy/(?P<path>[\s\S]*)$",
        IntegrationProxyView.as_view(),
        name="integration-proxy",
    ),
    # Hiring operations (docs/HIRING.md) and the calendars' change notifications (no API key:
    # verified by channel token / clientState, integrations/calendar/notifications.py).
    re_path(
        rf"^integrations/(?P<pk>{UUID_PATTERN})/calendar/free-busy/?$",
        FreeBusyView.as_view(),
        name="calendar-free-busy",
    ),
    re_path(
        rf"^integrations/(?P<pk>{UUID_PATTERN})/calendar/interviews/(?P<interview_id>{INTERVIEW_ID_PATTERN})/?$",
        InterviewEventView.as_view(),
        name="calendar-interview",
    ),
    re_path(rf"^integrations/(?P<pk>{UUID_PATTERN})/messages/?$", MessageView.as_view(), name="messages"),
    re_path(
        rf"^integrations/(?P<pk>{UUID_PATTERN})/messages/channels/?$",
        ChannelListView.as_view(),
        name="message-channels",
    ),
    re_path(
        r"^integrations/calendar/notifications/google/?$", google_notification, name="calendar-notifications-google"
    ),
    re_path(
        r"^integrations/calendar/notifications/microsoft/?$",
        microsoft_notification,
        name="calendar-notifications-microsoft",
    ),
    *router.urls,
]
