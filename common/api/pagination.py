from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination as _PageNumberPagination


class PageNumberPagination(_PageNumberPagination):
    """`?page=` and `?page_size=` (at most `max_page_size`; larger values are capped).

    A `page_size` that is not a positive integer is a 400, not silently the default: a
    client that asked for something else should know it did not get it. A `page` past the
    end (or not a positive integer) stays DRF's 404 "Invalid page.".
    """

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
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

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Results per page, 1 to {self.max_page_size} (larger values are capped)."
        return parameters
