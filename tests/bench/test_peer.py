"""bench/peer.py's pieces that need no network and no benchmark run: its arguments, its
database, the counting of the receiver's records, the pins and the skip path."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(stem: str):
    spec = importlib.util.spec_from_file_location(f"bench_{stem}", ROOT / "bench" / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # the bench puts bench/ first: its webhooks.py would shadow the app
    return module


peer = _load("peer")


def test_the_defaults_are_those_of_the_end_to_end_bench():
    args = peer.parse_args([])
    assert (args.events, args.concurrency, args.child) == (3000, 2, False)
    assert args.timeout == 150  # max(120, N / 20), as bench/webhooks.py waits
    assert peer.parse_args(["--events", "100"]).timeout == 120


@pytest.mark.parametrize("argv", [["--events", "0"], ["--concurrency", "0"]])
def test_non_positive_counts_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        peer.parse_args(argv)
    assert exit_.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def test_the_peer_database_is_its_own():
    bench_url = "postgres://root@127.0.0.1:5432/h_bench"
    assert peer.peer_database_url({"BENCH_POSTGRES_URL": bench_url}) == bench_url + "_peer"
    own = "postgres://root@127.0.0.1:5432/other"
    assert peer.peer_database_url({"BENCH_POSTGRES_URL": bench_url, "BENCH_PEER_POSTGRES_URL": own}) == own


def test_lost_and_duplicated_deliveries_are_counted():
    records = [
        [1.0, "", -1],  # the warm-up
        [2.0, "", 0],
        [3.0, "", 1],
        [4.0, "", 1],  # a duplicate
        [5.0, "", 3],
        [9.0, "", 7],  # not one of the N triggers
    ]
    assert peer.count_deliveries(records, 4) == peer.Count(received=3, lost=1, duplicated=1, last=5.0)
    assert peer.count_deliveries([], 4) == peer.Count(received=0, lost=4, duplicated=0, last=None)


def test_the_receiver_counts_django_webhook_bodies_and_ours():
    receiver = _load("webhooks").Receiver()  # bench/receiver.py on a free loopback port
    try:
        bodies = [
            # django-webhook's body: json.dumps() of the model's fields, with spaces.
            json.dumps({"object": {"id": 1, "seq": 0, "created": "2026-12-03"}, "topic": "peerapp.Order/create"}),
            json.dumps({"object": {"id": 2, "seq": 1}, "topic": "peerapp.Order/create"}),
            json.dumps({"object": {"id": 3, "seq": 1}, "topic": "peerapp.Order/create"}),
            '{"type":"application.created","data":{"seq":2}}',  # ours, compact
        ]
        for body in bodies:
            request = urllib.request.Request(receiver.url, data=body.encode(), method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        count = peer.count_deliveries(receiver.records(), 4)
    finally:
        receiver.stop()
    assert (count.received, count.lost, count.duplicated) == (3, 1, 1)


def test_the_peer_packages_are_pinned_and_stay_out_of_the_requirements():
    assert all("==" in pin for pin in peer.PINS)
    names = {pin.split("==")[0].split("[")[0].lower() for pin in peer.PINS}
    assert {"django-webhook", "celery"} <= names
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        text = (ROOT / requirements).read_text().lower()
        assert "django-webhook" not in text
        assert "celery" not in text


def test_a_ready_virtualenv_is_not_installed_again(tmp_path):
    (tmp_path / "bench-pins.txt").write_text("\n".join(peer.PINS) + "\n")
    assert peer.ensure_venv(tmp_path) is None


def test_a_virtualenv_that_cannot_be_made_is_a_reason_to_skip(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    reason = peer.ensure_venv(blocker / "venv")  # under a file: no directory can be made
    assert reason is not None
    assert reason.startswith("could not create the virtualenv")
