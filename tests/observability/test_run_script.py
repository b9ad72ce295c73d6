"""`make run` (scripts/run.py) gives the web server and the cluster one cleared
PROMETHEUS_MULTIPROC_DIR; config/gunicorn.py does the same for gunicorn."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tests.cluster import ROOT


def load(relative: str):
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_").removesuffix(".py"), ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_gives_both_children_the_set_directory_cleared(tmp_path, monkeypatch):
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.test")
    env = load("scripts/run.py").children_env()
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert not (tmp_path / "counter_123.db").exists()
    assert (tmp_path / "keep.txt").exists()


def test_run_makes_a_fresh_directory_when_none_is_set(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.test")
    directory = Path(load("scripts/run.py").children_env()["PROMETHEUS_MULTIPROC_DIR"])
    try:
        assert directory.is_dir() and not list(directory.iterdir())
    finally:
        directory.rmdir()


def test_gunicorn_config_sets_clears_and_marks_dead(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config = load("config/gunicorn.py")
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    (tmp_path / "histogram_77.db").write_bytes(b"stale")
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"x")
    config.on_starting(None)
    assert not (tmp_path / "histogram_77.db").exists()
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"x")
    (tmp_path / "counter_4242.db").write_bytes(b"x")

    class Worker:
        pid = 4242

    config.child_exit(None, Worker())
    assert not (tmp_path / "gauge_livesum_4242.db").exists()  # a dead worker's live gauges go
    assert (tmp_path / "counter_4242.db").exists()  # its counts keep counting
