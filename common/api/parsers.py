"""The API's JSON parser: DRF's, plus two refusals every endpoint needs, as one clear 400.

- **Nesting deeper than `API_MAX_JSON_DEPTH`** (default 32 levels of objects and arrays).
  Python code that walks a value recursively (the JSON encoder, validators) fails with
  `RecursionError` around 1,000 levels, and the JSON decoder itself does too; a body
  nested that deep was a 500. No request we serve needs more than a handful of levels, and
  an event payload is sent on inside a webhook body one level deeper, so 32 leaves room
  for any real payload while staying well inside what receivers' parsers accept (.NET's
  System.Text.Json stops at 64, Rails at 100, serde_json at 128).
- **Text no database can store.** JSON may spell a NUL character (`\\u0000`) or a lone
  UTF-16 surrogate (`\\ud800`) in any string, keys included. PostgreSQL refuses both in
  text and jsonb columns, so they used to surface as 500s (SQLite stored them silently).

Bodies larger than `DATA_UPLOAD_MAX_MEMORY_SIZE` never get here: `common.api.middleware`
answers them with a 413 first.

Both checks walk the parsed value only when its text says they could fail: nesting past the
limit needs more than `limit` brackets in the text, and a NUL or a lone surrogate can only
come from a `\\u` escape or from the decoded text itself (searched in one pass). Most bodies
skip both walks.
"""

from __future__ import annotations

import codecs
import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as drf_json

from common import app_settings
from common.jsonvalues import UNSTORABLE_TEXT, contains_unstorable_text, nesting_exceeds


def too_deep_message(limit: int) -> str:
    return f"JSON parse error - objects and arrays nest more than {limit} levels deep (the limit is {limit})."


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = app_settings.max_json_depth()
        # DRF's charset choice (it refuses bytes-to-bytes codecs such as bz2_codec).
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            # What DRF's parser does (json.load of the decoded stream), keeping the text.
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_constant=drf_json.strict_constant if self.strict else None)
        except RecursionError:  # the decoder's own limit, far past ours
            raise ParseError(too_deep_message(limit)) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if text.count("[") + text.count("{") > limit and nesting_exceeds(data, limit):
            raise ParseError(too_deep_message(limit))
        if ("\\u" in text or UNSTORABLE_TEXT.search(text)) and contains_unstorable_text(data):
            raise ParseError("JSON parse error - strings must not contain NUL characters or lone surrogates.")
        return data
