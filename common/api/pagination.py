import base64
import binascii
import json
import uuid
from datetime import datetime

from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.pagination import PageNumberPagination as _PageNumberPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import replace_query_param


class PageSizeMixin:
    """`?page_size=`: at most `max_page_size` (larger values are capped); not a positive
    integer is a 400."""

    page_size: int | None
    page_size_query_param: str | None = "page_size"
    max_page_size: int | None = 500

    def get_page_size(self, request):
        assert self.page_size_query_param and self.max_page_size
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise exceptions.ValidationError({self.page_size_query_param: ["Must be a positive integer."]})
        return min(size, self.max_page_size)


class PageNumberPagination(PageSizeMixin, _PageNumberPagination):
    """`?page=` and `?page_size=` (at most `max_page_size`; larger values are capped).

    A `page_size` that is not a positive integer is a 400, not silently the default: a
    client that asked for something else should know it did not get it. A `page` past the
    end (or not a positive integer) stays DRF's 404 "Invalid page.".
    """

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Results per page, 1 to {self.max_page_size} (larger values are capped)."
        return parameters


class CursorPagination(PageSizeMixin, BasePagination):
    """Keyset pagination: `?cursor=` (opaque, from the `next` link) and `?page_size=`; no count.

    Rows come newest first by (`created_at`, `id`), both descending, and a page starts
    strictly after the last row of the previous one: rows inserted meanwhile never shift a
    page (no duplicates, no gaps), and any page costs an index range scan, however deep.
    A cursor that cannot be decoded is a 400. A view may read its page itself: `keyset`
    gives the key and size, `paginate_rows` takes the rows, model instances or dicts with
    `created_at` and `id` (the logs list: `selectors.webhook_log_page`).
    """

    page_size = api_settings.PAGE_SIZE
    cursor_query_param = "cursor"
    ordering = ("-created_at", "-id")

    def paginate_queryset(self, queryset, request, view=None):
        after, size = self.keyset(request)
        queryset = queryset.order_by(*self.ordering)
        if after is not None:
            created_at, pk = after
            queryset = queryset.filter(created_at__lte=created_at).exclude(created_at=created_at, pk__gte=pk)
        return self.paginate_rows(list(queryset[: size + 1]), size)

    def keyset(self, request) -> tuple[tuple[datetime, uuid.UUID] | None, int]:
        """(the last row shown before, or None for page 1; the page size) of `request`: for a
        caller reading its page itself, `size + 1` rows after that key (see `paginate_rows`)."""
        self.request = request
        size = self.get_page_size(request)
        raw = request.query_params.get(self.cursor_query_param)
        return (None if raw is None else self.decode(raw)), size

    def paginate_rows(self, rows: list, size: int) -> list:
        """The page of `rows` (up to `size + 1` of them, in order, after `keyset`'s key)."""
        self.has_next = len(rows) > size
        self.page = rows[:size]
        return self.page

    @staticmethod
    def encode(created_at: datetime, pk) -> str:
        raw = json.dumps([created_at.isoformat(), str(pk)], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple[datetime, uuid.UUID]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            created_at, pk = json.loads(raw)
            moment = datetime.fromisoformat(created_at)
            if moment.tzinfo is None:
                raise ValueError(created_at)
            return moment, uuid.UUID(pk)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise exceptions.ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        last = self.page[-1]
        # A model instance, or a dict row (`paginate_rows`).
        created_at, pk = (last["created_at"], last["id"]) if isinstance(last, dict) else (last.created_at, last.pk)
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, self.encode(created_at, pk))

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri", "description": "the next page, or null"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: the `cursor` of the previous page's `next` link (opaque).",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page, 1 to {self.max_page_size} (larger values are capped).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
