"""The service's own health (`GET /healthz`): database, broker and a recent cluster heartbeat.

Each part answers `{"ok": bool, ...}`; details name the failure's kind, never connection
strings or credentials. django-q2's own cluster stats are not used for the heartbeat: with
the ORM broker they live in Django's cache, which is per process by default (LocMemCache),
so the web process cannot see them. A scheduled task (`health.tasks.heartbeat`) writes a
timestamp instead, which also proves the scheduler, the broker and a worker all work.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from . import app_settings
from .models import ClusterHeartbeat

BROKER_TIMEOUT = 2.0
_redis_clients: dict[str, Any] = {}
_redis_lock = threading.Lock()


def _redis(url: str):
    import redis

    client = _redis_clients.get(url)
    if client is None:
        with _redis_lock:
            client = _redis_clients.get(url)
            if client is None:
                client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT)
                _redis_clients[url] = client
    return client


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return {"ok": False, "error": f"unreachable ({type(error).__name__})"}
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict[str, Any]:
    redis_url = settings.Q_CLUSTER.get("redis")
    if redis_url:
        try:
            _redis(redis_url).ping()
        except Exception as error:
            return {"ok": False, "broker": "redis", "error": f"unreachable ({type(error).__name__})"}
        return {"ok": True, "broker": "redis"}
    try:  # the ORM broker is a table in the database
        from django_q.models import OrmQ

        OrmQ.objects.using(settings.Q_CLUSTER.get("orm", "default")).exists()
    except Exception as error:
        return {"ok": False, "broker": "orm", "error": f"unreachable ({type(error).__name__})"}
    return {"ok": True, "broker": "orm"}


def check_cluster() -> dict[str, Any]:
    max_age = app_settings.heartbeat_max_age_seconds()
    try:
        last = ClusterHeartbeat.objects.aggregate(last=Max("beat_at"))["last"]
    except Exception as error:
        return {"ok": False, "error": f"heartbeat unreadable ({type(error).__name__})"}
    if last is None:
        return {"ok": False, "error": "no heartbeat yet: is a cluster (manage.py qcluster) running?"}
    age = (timezone.now() - last).total_seconds()
    part = {"last_heartbeat_at": last.isoformat(), "age_seconds": round(age, 1), "max_age_seconds": max_age}
    if age > max_age:
        return {"ok": False, **part, "error": f"last heartbeat {age:.0f} s ago"}
    return {"ok": True, **part}


def service_status() -> dict[str, Any]:
    parts = {"database": check_database(), "broker": check_broker()}
    parts["cluster"] = check_cluster() if parts["database"]["ok"] else {"ok": False, "error": "database unreachable"}
    ok = all(part["ok"] for part in parts.values())
    return {"status": "ok" if ok else "error", "checks": parts}
