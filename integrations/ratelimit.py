"""Rate limits on provider calls: one token bucket per (integration, limit), shared by every
process and machine.

A limit (`providers.RateLimit`) says "at most `requests` calls in any window of
`per_seconds` seconds, up to `burst` of them back to back". Each is enforced with GCRA (the
generic cell rate algorithm, a token bucket kept as one number, the "theoretical arrival
time"): calls are spaced `per_seconds / (requests - burst + 1)` apart once the burst is
used, so no window of `per_seconds` ever holds more than `requests` calls.

A call *reserves* its slot atomically: every bucket of the integration is checked and
advanced in one step (a Lua script in Redis; locked rows and conditional UPDATEs in the
database), then the caller sleeps until its slot. A slot further away than
`INTEGRATIONS_RATE_LIMIT_MAX_WAIT_SECONDS` is not reserved: the call is refused with
`RateLimitExceeded(retry_after=...)`.

Backends: Redis when `REDIS_URL` (or `INTEGRATIONS_RATE_LIMIT_REDIS_URL`) is set, with
Redis' clock; else the database (`RateLimitBucket`, one row per bucket), with each process's
clock (keep the machines' clocks in sync). When the backend fails, calls go ahead unlimited
and a warning is logged: the provider's own 429s, fed back here, still slow us down.

`feedback(integration, headers, status)` is called by the client after every answer: a 429
or 503 with `Retry-After`, or `X-RateLimit-Remaining`/`RateLimit-Remaining` at 0 with a
reset, pauses every bucket of the integration until then (docs/RELIABILITY.md, "Rate limits
and the call log"; the limits themselves: docs/PROVIDERS.md).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import DatabaseError, connection, transaction

from . import app_settings, providers
from .providers import RateLimit

logger = logging.getLogger(__name__)

US = 1_000_000
#: a Reset value above this is a Unix time, below it a number of seconds
EPOCH_THRESHOLD = 1_000_000_000
#: the pause after a 429 that says nothing about when to come back
DEFAULT_429_PAUSE = 1.0


class RateLimitExceeded(Exception):
    """The integration's rate limit has no slot within the allowed wait.

    `retry_after` is the number of seconds until one is expected. The client maps it to its
    own `RateLimited` error."""

    def __init__(self, retry_after: float, *, integration_id: Any = None):
        self.retry_after = max(0.0, float(retry_after))
        self.integration_id = integration_id
        super().__init__(f"Rate limit reached: retry in {self.retry_after:.1f} s.")


@dataclass(frozen=True)
class Bucket:
    """One limit of one integration, in the units the backends store (microseconds)."""

    name: str
    interval_us: int
    tolerance_us: int

    @classmethod
    def of(cls, limit: RateLimit) -> Bucket:
        interval = limit.per_seconds / (limit.requests - limit.burst + 1)
        return cls(limit.name, max(1, round(interval * US)), max(0, round((limit.burst - 1) * interval * US)))


def limits_for(integration: Any) -> tuple[RateLimit, ...]:
    """The integration's limits: `config.rate_limit` when set, else the provider's defaults."""
    override = (integration.config or {}).get("rate_limit")
    if override is not None:
        try:
            return providers.parse_rate_limits(override)
        except ValueError:
            logger.warning("Integration %s has an invalid config.rate_limit; using the defaults.", integration.pk)
    provider = providers.get_provider(integration.provider)
    return provider.rate_limits if provider else (providers.schema.UNDOCUMENTED_RATE_LIMIT,)


def buckets_for(integration: Any) -> list[Bucket]:
    return [Bucket.of(limit) for limit in limits_for(integration)]


# --- backends --------------------------------------------------------------------------


class Backend(Protocol):
    def reserve(self, integration_id: Any, buckets: list[Bucket], max_wait_us: int) -> tuple[bool, int]:
        """Reserve the next slot of every bucket if it comes within `max_wait_us`:
        (reserved, microseconds until the slot)."""

    def pause(self, integration_id: Any, buckets: list[Bucket], delay_us: int) -> None:
        """Let no call through the buckets before `delay_us` from now (then one per interval)."""

    def reset(self, integration_id: Any, buckets: list[Bucket]) -> None:
        """Forget the buckets' state (full again)."""


def _allow_and_advance(tats: list[int], buckets: list[Bucket], now: int) -> tuple[int, list[int]]:
    """GCRA over several buckets at once: when the call may go (µs) and the new states."""
    tats = [max(tat, now) for tat in tats]
    allow = max([now, *(tat - bucket.tolerance_us for tat, bucket in zip(tats, buckets, strict=True))])
    return allow, [max(tat, allow) + bucket.interval_us for tat, bucket in zip(tats, buckets, strict=True)]


class DatabaseBackend:
    """One `RateLimitBucket` row per bucket. A reservation is one short transaction: lock
    the integration's bucket rows (SELECT ... FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE
    transactions, config/settings/base.py, hold the write lock from BEGIN), compute, and
    write each row with a conditional UPDATE (`tat_us` still the value read): should a
    writer slip past the lock, the UPDATE matches no row and the reservation is computed
    again, so no update is ever lost."""

    attempts = 100

    @staticmethod
    def _now_us() -> int:
        return time.time_ns() // 1000

    @staticmethod
    def _create_missing(integration_id: Any, names: list[str]) -> None:
        from .models import RateLimitBucket

        RateLimitBucket.objects.bulk_create(
            [RateLimitBucket(integration_id=integration_id, name=name, tat_us=0) for name in names],
            ignore_conflicts=True,
        )

    def _locked(self, integration_id: Any, buckets: list[Bucket]) -> dict[str, int]:
        from .models import RateLimitBucket

        if connection.vendor == "postgresql":
            # A bucket's state is worth no fsync: a database crash may forget the last
            # fraction of a second of reservations (a few extra calls). Halves the latency.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        rows = RateLimitBucket.objects.select_for_update().filter(
            integration_id=integration_id, name__in=[bucket.name for bucket in buckets]
        )
        return dict(rows.order_by("name").values_list("name", "tat_us"))

    @staticmethod
    def _write(integration_id: Any, old: dict[str, int], new: dict[str, int]) -> bool:
        """Inside the transaction: every bucket from its old to its new state, or False."""
        from .models import RateLimitBucket

        for name in sorted(new):
            updated = RateLimitBucket.objects.filter(integration_id=integration_id, name=name, tat_us=old[name]).update(
                tat_us=new[name]
            )
            if updated != 1:
                transaction.set_rollback(True)
                return False
        return True

    def _transact(self, integration_id: Any, buckets: list[Bucket], step) -> Any:
        """Run `step(old_states, now_us) -> (new_states or None, result)` in a locked
        transaction until it is written; the step's result."""
        names = [bucket.name for bucket in buckets]
        for _ in range(self.attempts):
            with transaction.atomic():
                old = self._locked(integration_id, buckets)
                missing = [name for name in names if name not in old]
                if not missing:
                    new, result = step(old, self._now_us())
                    if new is None or self._write(integration_id, old, new):
                        return result
                    continue
            self._create_missing(integration_id, missing)  # the first call: outside the lock
        raise DatabaseError("rate-limit bucket kept changing under contention")

    def reserve(self, integration_id: Any, buckets: list[Bucket], max_wait_us: int) -> tuple[bool, int]:
        def step(old: dict[str, int], now: int):
            allow, tats = _allow_and_advance([old[b.name] for b in buckets], buckets, now)
            if allow - now > max_wait_us:
                return None, (False, allow - now)
            return {b.name: tat for b, tat in zip(buckets, tats, strict=True)}, (True, allow)

        reserved, value = self._transact(integration_id, buckets, step)
        # The wait counts from now, after the commit: a slow commit shortens the sleep
        # instead of delaying the call past its slot.
        return (True, max(0, value - self._now_us())) if reserved else (False, value)

    def pause(self, integration_id: Any, buckets: list[Bucket], delay_us: int) -> None:
        def step(old: dict[str, int], now: int):
            new = {b.name: max(old[b.name], now + delay_us + b.tolerance_us) for b in buckets}
            return (None if new == old else new), None

        self._transact(integration_id, buckets, step)

    def reset(self, integration_id: Any, buckets: list[Bucket]) -> None:
        from .models import RateLimitBucket

        RateLimitBucket.objects.filter(integration_id=integration_id, name__in=[b.name for b in buckets]).delete()


# KEYS: one per bucket. ARGV[1]: the longest wait (µs); then per bucket i: ARGV[2i] its
# interval, ARGV[2i+1] its tolerance (µs). Redis' own clock, so every machine agrees.
RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local allow = now
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  tats[i] = tat
  local at = tat - tonumber(ARGV[2 * i + 1])
  if at > allow then allow = at end
end
local wait = allow - now
if wait > tonumber(ARGV[1]) then return {0, wait} end
for i, key in ipairs(KEYS) do
  local tat = tats[i]
  if allow > tat then tat = allow end
  tat = tat + tonumber(ARGV[2 * i])
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return {1, wait}
"""

# KEYS: one per bucket. ARGV[1]: the pause (µs); then per bucket i: ARGV[i+1] its tolerance.
PAUSE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  local paused = untl + tonumber(ARGV[i + 1])
  if paused > tat then tat = paused end
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return 1
"""


class RedisBackend:
    """One Redis key per bucket, `ratelimit:{<integration id>}:<limit>` (the hash tag keeps an
    integration's keys in one cluster slot); it expires once the bucket is full again."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._reserve = self.client.register_script(RESERVE_SCRIPT)
        self._pause = self.client.register_script(PAUSE_SCRIPT)

    @staticmethod
    def keys(integration_id: Any, buckets: list[Bucket]) -> list[str]:
        return [f"ratelimit:{{{integration_id}}}:{bucket.name}" for bucket in buckets]

    def reserve(self, integration_id: Any, buckets: list[Bucket], max_wait_us: int) -> tuple[bool, int]:
        args: list[int] = [max_wait_us]
        for bucket in buckets:
            args += [bucket.interval_us, bucket.tolerance_us]
        reserved, wait = self._reserve(keys=self.keys(integration_id, buckets), args=args)
        return bool(reserved), int(wait)

    def pause(self, integration_id: Any, buckets: list[Bucket], delay_us: int) -> None:
        self._pause(keys=self.keys(integration_id, buckets), args=[delay_us, *(b.tolerance_us for b in buckets)])

    def reset(self, integration_id: Any, buckets: list[Bucket]) -> None:
        self.client.delete(*self.keys(integration_id, buckets))


@functools.cache
def _redis_backend(url: str) -> RedisBackend:
    return RedisBackend(url)


def backend() -> Backend:
    url = app_settings.rate_limit_redis_url()
    return _redis_backend(url) if url else DatabaseBackend()


def _backend_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (DatabaseError, redis.RedisError)


# --- the API the client uses ------------------------------------------------------------


def acquire(integration: Any, *, max_wait: float | None = None) -> float:
    """Wait for a slot in every limit of the integration; the milliseconds waited.

    Raises `RateLimitExceeded` when the slot is more than `max_wait` seconds away (default
    `INTEGRATIONS_RATE_LIMIT_MAX_WAIT_SECONDS`); nothing is reserved then."""
    buckets = buckets_for(integration)
    limit_us = round((app_settings.rate_limit_max_wait_seconds() if max_wait is None else max_wait) * US)
    try:
        reserved, wait_us = backend().reserve(integration.pk, buckets, limit_us)
    except _backend_errors():
        logger.warning("Rate-limit backend unavailable; integration %s calls unlimited.", integration.pk, exc_info=True)
        return 0.0
    if not reserved:
        raise RateLimitExceeded(wait_us / US, integration_id=integration.pk)
    if wait_us > 0:
        time.sleep(wait_us / US)
    return wait_us / 1000


def before_call(integration: Any, method: str, path: str) -> float:
    """The `before_call` hook (integrations/client/hooks.py): waits on the limits, unless
    `INTEGRATIONS_RATE_LIMITS_ENABLED` is off."""
    return acquire(integration) if app_settings.rate_limits_enabled() else 0.0


def pause(integration: Any, seconds: float) -> None:
    """Let no call of the integration through for `seconds` (capped by
    `INTEGRATIONS_RATE_LIMIT_MAX_PAUSE_SECONDS`)."""
    seconds = min(seconds, app_settings.rate_limit_max_pause_seconds())
    if seconds <= 0:
        return
    try:
        backend().pause(integration.pk, buckets_for(integration), round(seconds * US))
    except _backend_errors():
        logger.warning("Rate-limit backend unavailable; pause of integration %s lost.", integration.pk, exc_info=True)


def reset(integration: Any) -> None:
    """Forget the integration's bucket state (tests, benchmarks, an operator after a change)."""
    backend().reset(integration.pk, buckets_for(integration))


def feedback(integration: Any, headers: Mapping[str, str] | None, status: int | None) -> float | None:
    """Honour what the provider said about its limits; the pause applied (seconds) or None.

    Call it after every answer (any status): a 429, or a 503 with `Retry-After`, pauses
    the integration's buckets until the retry time; any answer whose remaining quota is 0
    (`X-RateLimit-Remaining`, `RateLimit-Remaining` or the `RateLimit` field) pauses them
    until its reset."""
    seconds = pause_from_headers(headers or {}, status)
    if seconds is not None:
        pause(integration, seconds)
    return seconds


def pause_from_headers(headers: Mapping[str, str], status: int | None, *, now: float | None = None) -> float | None:
    """The pause (seconds) a provider's answer asks for, or None. Pure: tests call it."""
    now = time.time() if now is None else now
    lower = {str(key).lower(): str(value) for key, value in headers.items()}
    if status in (429, 503):
        retry_after = _retry_after(lower.get("retry-after"), now)
        if retry_after is not None:
            return retry_after
    remaining, reset_at = _quota(lower, now)
    if status == 429:
        return reset_at if reset_at is not None else DEFAULT_429_PAUSE
    if remaining is not None and remaining <= 0:
        return reset_at if reset_at is not None else DEFAULT_429_PAUSE
    return None


def _retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After`: delay seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    match = re.match(r"\s*(-?\d+(\.\d+)?)", value)
    return float(match.group(1)) if match else None


def _reset_seconds(value: float | None, now: float) -> float | None:
    if value is None:
        return None
    return max(0.0, value - now) if value > EPOCH_THRESHOLD else max(0.0, value)


def _quota(headers: dict[str, str], now: float) -> tuple[float | None, float | None]:
    """(remaining, seconds until reset) from `X-RateLimit-*`, `RateLimit-*` (IETF draft) or
    the structured `RateLimit: limit=..., remaining=..., reset=...` field."""
    remaining = _number(headers.get("x-ratelimit-remaining"))
    if remaining is None:
        remaining = _number(headers.get("ratelimit-remaining"))
    reset = _number(headers.get("x-ratelimit-reset"))
    if reset is None:
        reset = _number(headers.get("ratelimit-reset"))
    field = headers.get("ratelimit")
    if field:
        params = dict(re.findall(r"\b(\w+)\s*=\s*(-?[\d.]+)", field))
        remaining = _number(params.get("remaining", params.get("r"))) if remaining is None else remaining
        reset = _number(params.get("reset", params.get("t"))) if reset is None else reset
    return remaining, _reset_seconds(reset, now)
