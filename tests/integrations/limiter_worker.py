"""A separate process taking slots from an integration's rate limit (the limiter tests and
bench/ratelimit.py run two of these at once).

    python tests/integrations/limiter_worker.py INTEGRATION_ID CALLS START_AT OUT_FILE

Waits until the Unix time START_AT, then calls `ratelimit.acquire` CALLS times and writes the
Unix time of each granted slot (after its wait) to OUT_FILE as JSON. The environment says
which database and which backend (DATABASE_URL, INTEGRATIONS_RATE_LIMIT_REDIS_URL).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def main(integration_id: str, calls: int, start_at: float, out: str) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from integrations import ratelimit
    from integrations.models import Integration

    integration = Integration.objects.get(pk=integration_id)
    backend = ratelimit.backend()
    if isinstance(backend, ratelimit.RedisBackend):
        backend.client.ping()  # connect before the start, not on the first slot
    granted: list[float] = []
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(calls):
        ratelimit.acquire(integration, max_wait=120)
        granted.append(time.time())
    Path(out).write_text(json.dumps(granted))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
