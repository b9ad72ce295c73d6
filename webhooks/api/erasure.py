"""`POST /api/data-subjects/erase/`: erase what is stored about a candidate."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import serializers as api
from common.api.schema import VALIDATION_ERROR
from organizations.access import request_organization
from organizations.models import ApiKey
from webhooks.services.erasure import MAX_SUBJECT_LENGTH, subject_erase

from .examples import SUBJECT_ERASE


class SubjectEraseSerializer(api.Serializer):
    candidate_id = serializers.CharField(
        required=False, max_length=MAX_SUBJECT_LENGTH, help_text="The candidate's id on the hiring platform."
    )
    email = serializers.EmailField(required=False, max_length=MAX_SUBJECT_LENGTH)

    def validate(self, attrs):
        if not attrs.get("candidate_id") and not attrs.get("email"):
            raise serializers.ValidationError("Give a candidate_id, an email, or both.")
        return attrs


class SubjectErasureSerializer(api.Serializer):
    id = serializers.UUIDField(help_text="The tombstone's id.")
    deleted = serializers.DictField(child=serializers.IntegerField(), help_text="Rows deleted, per table.")
    redacted = serializers.DictField(child=serializers.IntegerField(), help_text="Rows rewritten, per table.")
    erased_by = serializers.CharField()
    created_at = serializers.DateTimeField()


def requester(request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"API key {request.auth.name!r}"
    return f"user {request.user.get_username()!r}"


@extend_schema(tags=["events"])
class SubjectEraseView(APIView):
    @extend_schema(
        request=SubjectEraseSerializer,
        responses={200: SubjectErasureSerializer, 400: VALIDATION_ERROR},
        summary="Erase a candidate's data: stored payloads, log excerpts, request copies (a writable key)",
        description="Deletes the events about the candidate with their deliveries and logs (redacts in place "
        "those with a delivery pending), rewrites other copies with [erased], and leaves a tombstone with "
        "the counts and a hash of the subject.",
        examples=SUBJECT_ERASE,
    )
    def post(self, request):
        serializer = SubjectEraseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = subject_erase(
            organization=request_organization(request), erased_by=requester(request), **serializer.validated_data
        )
        body = {
            "id": result.erasure.id,
            "deleted": result.deleted,
            "redacted": result.redacted,
            "erased_by": result.erasure.erased_by,
            "created_at": result.erasure.created_at,
        }
        return Response(SubjectErasureSerializer(body).data)
