from rest_framework.pagination import PageNumberPagination as _PageNumberPagination


class PageNumberPagination(_PageNumberPagination):
    """`?page=` and `?page_size=` (at most `max_page_size`)."""

    page_size_query_param = "page_size"
    max_page_size = 500
