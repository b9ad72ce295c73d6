"""One exception handler for the whole API (DRF `EXCEPTION_HANDLER`).

Domain and validation errors become clear 4xx bodies; nothing a client sends may produce
a 500. Bodies: `{"detail": "..."}` or DRF's field errors `{"field": ["..."]}`.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from common.exceptions import ApplicationError, ConflictError
from common.fields import UndecryptableValueError

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, UndecryptableValueError):
        # A value no key in FERNET_KEYS decrypts was needed (common/fields.py): the row is
        # fine, the configuration is not. The message says what to do and holds no secret.
        logger.warning("%s %s: %s", context["request"].method, context["request"].path, exc)
        exc = ConflictError(str(exc))

    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response
