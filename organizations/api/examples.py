"""Request examples of the organizations API, shown in /api/schema/ (Swagger UI, ReDoc).

tests/common/test_schema_examples.py sends each one to its endpoint and expects it accepted.
"""

from drf_spectacular.utils import OpenApiExample

API_KEY_CREATE = [
    OpenApiExample("A key for CI", value={"name": "ci", "read_only": False}, request_only=True),
    OpenApiExample("A read-only key", value={"name": "dashboard", "read_only": True}, request_only=True),
]
