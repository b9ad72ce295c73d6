from django.urls import re_path

from .views import metrics

urlpatterns = [re_path(r"^metrics/?$", metrics, name="metrics")]
