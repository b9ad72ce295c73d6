"""Shared by the benchmarks: the environment of a measuring child process and a fresh
database for it (SQLite file, or a PostgreSQL database dropped and re-created)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def scenario_env(
    name: str, *, bench: str, extra: dict[str, str], postgres_redis: bool = False, recreate: bool = True
) -> dict[str, str]:
    """The environment of a bench scenario. On PostgreSQL the database is dropped and
    created again, unless `recreate` is false and it exists already."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "bench-secret-key-" + "x" * 40,
        "FERNET_KEYS": "bench-fernet-key",
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "Q_LOG_LEVEL": "ERROR",
        **extra,
    }
    if name == "sqlite":
        db = Path("/tmp") / f"bench-{bench}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{db}"
        env.pop("REDIS_URL", None)
        return env
    url = os.environ.get("BENCH_POSTGRES_URL", f"postgres://root@127.0.0.1:5432/bench_{bench}")
    recreate_database(url, only_if_missing=not recreate)
    env["DATABASE_URL"] = url
    if postgres_redis:
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    return env


def recreate_database(url: str, *, only_if_missing: bool = False) -> None:
    """Drops the PostgreSQL database of `url` and creates it again (with `only_if_missing`,
    creates it only where it does not exist)."""
    dbname = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    exists = subprocess.run(
        ["psql", admin, "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    if only_if_missing and exists:
        return
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {dbname}"], check=True)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {dbname}"], check=True)
