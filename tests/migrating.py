"""Running migrations inside a test: to a given state, and back to the latest."""

from __future__ import annotations

from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate_to(targets: list[tuple[str, str]]) -> Apps:
    """Migrate the test database to `targets` ((app, migration) pairs); returns the
    historical models of that state."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest() -> list[tuple[str, str]]:
    """Every app's last migration: `migrate_to(latest())` restores today's schema."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()
