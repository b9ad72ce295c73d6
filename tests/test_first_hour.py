"""README "First hour", run as written: on a fresh copy of the repository, its blocks in order.

The blocks are the fenced `sh` blocks after a `<!-- first-hour -->` comment (run one after
another in one bash shell, so `KEY`, `ID`... carry over; each must exit 0) or a
`<!-- first-hour: background -->` comment (the long-running server and receiver, each
started as its own process). Only the documented ports are substituted (8000 and 9000 ->
free ones). The copy gets its own SQLite file whatever DATABASE_URL says, the ORM broker,
and the shared .venv (its requirements marked as installed, so `make` installs nothing).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from http import HTTPStatus
from pathlib import Path

import requests
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 60.0  # seconds, the whole walkthrough
BLOCK = re.compile(r"<!-- first-hour(?P<background>: background)? -->\n```sh\n(?P<code>.*?)```\n", re.DOTALL)
DONE = "::first-hour step {} exit "


def first_hour_blocks() -> list[tuple[bool, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## First hour\n", 1)[1].split("\n## ", 1)[0]
    return [(bool(m["background"]), m["code"]) for m in BLOCK.finditer(section)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_copy(dest: Path) -> None:
    """The files a clone would have (tracked, plus new ones not ignored), not .venv or .env."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if name == ".venv" or name.startswith(".venv/") or not source.is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (dest / ".venv").symlink_to((ROOT / ".venv").resolve())
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        os.utime(dest / requirements, (0, 0))  # older than .venv/.runtime: make installs nothing


def walkthrough_env(tmp_path: Path) -> dict[str, str]:
    drop = ("DJANGO_", "REDIS_URL", "ALLOW_PRIVATE_URLS", "MAKE", "MFLAGS", "ENV_FILE", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'first-hour.sqlite3'}",
        DEBUG="true",
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def wait_for_port(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"background process exited with {proc.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}")


class Shell:
    """One bash, fed one README block at a time; each block's exit status is reported."""

    def __init__(self, cwd: Path, env: dict[str, str], log: Path):
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.log = log
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, number: int, code: str, deadline: float) -> str:
        """Run a block as the README's reader would, in this shell under `set -e -o pipefail`:
        a failing command ends the shell, so the missing marker names the step. Returns the
        block's output."""
        script = self.log.parent / f"step-{number}.sh"
        script.write_text(code)
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"set -e -o pipefail\nsource {script}\necho; echo '{DONE.format(number)}'$?\n")
        self.proc.stdin.flush()
        out: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"step {number} timed out:\n{''.join(out)}") from None
            if line is None:
                self.proc.wait()
                raise AssertionError(f"step {number} failed (exit {self.proc.returncode}):\n{''.join(out)}")
            if line.startswith(DONE.format(number)):
                assert line.strip().endswith("exit 0"), f"step {number}: {line}\n{''.join(out)}"
                return "".join(out)
            out.append(line)

    def close(self) -> None:
        stop(self.proc)


def admin_session_get(port: int, path: str) -> dict:
    """Log in at /admin/ as the README's superuser, then GET an API path with that session."""
    base = f"http://127.0.0.1:{port}"
    with requests.Session() as session:
        login = session.get(f"{base}/admin/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token, login.text[:500]
        form = {"username": "admin", "password": "change me", "csrfmiddlewaretoken": token[1], "next": "/admin/"}
        logged_in = session.post(f"{base}/admin/login/", data=form, timeout=10, allow_redirects=False)
        assert logged_in.status_code == HTTPStatus.FOUND, logged_in.text[:500]
        answer = session.get(f"{base}{path}", timeout=10)
        assert answer.status_code == HTTPStatus.OK, answer.text
        return answer.json()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=25)  # run.py stops the cluster and the web server first
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def test_readme_first_hour_runs_as_written_and_delivers_a_signed_event(tmp_path):
    started = time.monotonic()
    deadline = started + BUDGET
    blocks = first_hour_blocks()
    assert [background for background, _ in blocks] == [False, True, True, False, False, False]
    copy = tmp_path / "repo"
    fresh_copy(copy)
    env = walkthrough_env(tmp_path)
    port, receiver_port = free_port(), free_port()

    def substituted(code: str) -> str:
        return re.sub(r"\b9000\b", str(receiver_port), re.sub(r"\b8000\b", str(port), code))

    shell = Shell(copy, env, tmp_path / "shell.log")
    background: list[subprocess.Popen] = []
    receiver_out = tmp_path / "receiver.out"
    outputs: list[str] = []
    try:
        for number, (is_background, code) in enumerate(blocks, start=1):
            code = substituted(code)
            if not is_background:
                outputs.append(shell.run(number, code, deadline))
                continue
            is_receiver = "tests.webhooks.receiver" in code
            out_path = receiver_out if is_receiver else tmp_path / f"background-{number}.out"
            with out_path.open("w") as out:
                proc = subprocess.Popen(
                    ["bash", "-c", code],
                    cwd=copy,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT if not is_receiver else subprocess.DEVNULL,
                    start_new_session=True,
                )
            background.append(proc)
            wait_for_port(receiver_port if is_receiver else port, proc, deadline)
        secret = shell.run(len(blocks) + 1, 'echo "$SECRET"', deadline).strip()
        session_organization = admin_session_get(port, "/api/organization/")
    finally:
        shell.close()
        for proc in reversed(background):
            stop(proc)
    assert time.monotonic() - started < BUDGET

    setup, who, test_and_event, logs = outputs
    assert session_organization["slug"] == "acme" and session_organization["can_write"] is True
    assert '"slug":"acme"' in who
    assert "Created organization acme" in setup
    assert "admin is now admin of acme." in setup
    assert '"success":true' in test_and_event
    assert '"application.created"' in logs and '"success":true' in logs

    received = [json.loads(line) for line in receiver_out.read_text().splitlines() if line.startswith("{")]
    events = [r for r in received if json.loads(r["body"])["type"] == "application.created"]
    assert len(events) == 1, received
    delivery = events[0]
    assert json.loads(delivery["body"])["data"] == {"application_id": 42}
    verified = Webhook(secret).verify(delivery["body"], delivery["headers"])  # raises when unsigned or wrong
    assert verified["type"] == "application.created"
    assert {json.loads(r["body"])["type"] for r in received} == {"webhook.test", "application.created"}
