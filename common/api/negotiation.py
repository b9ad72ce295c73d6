"""Content negotiation: DRF's, without parsing `Accept` for the answers every client asks for.

Every API view renders JSON only (`DEFAULT_RENDERER_CLASSES`), so a request that sends no
`Accept`, `*/*` or exactly the renderer's media type, and no `?format=`, gets that renderer:
what DRF's negotiation picks for them, without its per-request parsing and ordering of the
header. Anything else (several renderers, a format suffix or `?format=`, any other `Accept`)
goes through DRF's `DefaultContentNegotiation` unchanged, 406 included.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) == 1 and not format_suffix:
            (renderer,) = renderers
            media_type = renderer.media_type
            accept = request.META.get("HTTP_ACCEPT")
            if (
                (accept is None or accept == "*/*" or accept == media_type)
                and "*" not in media_type
                and ";" not in media_type
                and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
            ):
                return renderer, media_type
        return super().select_renderer(request, renderers, format_suffix)
