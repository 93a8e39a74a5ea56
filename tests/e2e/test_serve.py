"""`make serve` as a user runs it: one "ready" line with the URLs; stopped by Ctrl-C or SIGTERM to its process group
while busy, it stops within 10 seconds, cleanly, and leaves no process behind; killed, its children die with it; a
port already taken stops it at once, naming the port and the variable that moves it."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
import urllib3

from infra.local.dynamodb_local import free_port
from infra.local.serve import DEMO_POINTS
from infra.local.shop_emulator import sign_webhook
from infra.local.stack import DEV_SECRETS

ROOT = Path(__file__).resolve().parents[2]
PORT_VARIABLES = ("LOYALTY_GATEWAY_PORT", "LOYALTY_DYNAMODB_PORT", "LOYALTY_MOTO_PORT", "LOYALTY_SALESFORCE_PORT")
ORDER = json.loads((ROOT / "tests/events/shopify/orders_paid.json").read_text())


class Serve:
    """`python -m infra.local.serve` in a process group of its own (as a terminal runs `make serve`), on free ports."""

    def __init__(self, **ports: int) -> None:
        self.ports = {variable: ports.get(variable) or free_port() for variable in PORT_VARIABLES}
        env = {
            **os.environ,
            **{variable: str(port) for variable, port in self.ports.items()},
            "PYTHONPATH": f"{ROOT / 'layers/loyalty'}:{ROOT}",
        }
        for name in [name for name in env if name.startswith("AWS_ENDPOINT_URL")]:
            del env[name]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.local.serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.gateway_url = f"http://127.0.0.1:{self.ports['LOYALTY_GATEWAY_PORT']}"
        self._seen: dict[int, str] = {}

    @staticmethod
    def _read(stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def ready(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in self.stdout:
                if line.startswith("ready"):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no ready line: {''.join(self.stdout)}{''.join(self.stderr)}")

    def member_page(self, timeout: float = 10) -> str:
        """The member page address the ready message shows."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stdout):
                if "a member's own page" in line:
                    return line.rsplit(": ", 1)[1].strip()
            time.sleep(0.05)
        raise AssertionError(f"no member page in: {''.join(self.stdout)}")

    def output(self) -> tuple[str, str]:
        """Everything it printed, once it has exited."""
        for reader in self._readers:
            reader.join(timeout=5)
        return "".join(self.stdout), "".join(self.stderr)

    def children(self) -> dict[int, str]:
        """Its processes now (and remembered, so that none is left running after the test)."""
        found = descendants(self.process.pid)
        self._seen.update(found)
        return found

    def kill_everything(self) -> None:
        """After the test, whatever happened: nothing of it is left running."""
        self.children()
        for pid in [*running(self._seen), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, with its command line."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: dict[int, str] = {}
    waiting = list(children.get(pid, []))
    while waiting:
        child = waiting.pop()
        try:
            found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
        except OSError:
            continue
        waiting += children.get(child, [])
    return found


def running(pids: dict[int, str]) -> dict[int, str]:
    """Those of these processes still running (not a zombie, and not a new process that took over the id)."""
    alive = {}
    for pid, command in pids.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z" and now == command:
            alive[pid] = command
    return alive


def wait_until_none_running(pids: dict[int, str], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running(pids)


def kinds(processes: dict[int, str]) -> set[str]:
    """Which of the stack's kinds of child process are among these."""
    found = set()
    for command in processes.values():
        if "DynamoDBLocal.jar" in command:
            found.add("DynamoDB Local")
        elif "moto_server" in command:
            found.add("moto")
        elif "multiprocessing" in command and "resource_tracker" not in command:
            found.add("function instance")
    return found


@contextmanager
def busy(gateway_url: str, senders: int = 4) -> Iterator[list[int]]:
    """Shopify orders, member look-ups and tier reviews sent without pause until the block ends; yields the
    statuses answered so far."""
    done = threading.Event()
    answered: list[int] = []

    def send(sender: int) -> None:
        http = urllib3.PoolManager(retries=False, timeout=30)
        number = 0
        while not done.is_set():
            number += 1
            email = f"busy-{sender}-{number}@example.com"
            order_id = 10**9 * (sender + 1) + number
            order = {**ORDER, "id": order_id, "email": email, "customer": {**ORDER["customer"], "email": email}}
            body = json.dumps(order).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/paid",
                "X-Shopify-Shop-Domain": "nordic-outdoor.myshopify.com",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Hmac-Sha256": sign_webhook(body, DEV_SECRETS["SHOPIFY_WEBHOOK_SECRET"]),
            }
            try:
                answered.append(
                    http.request("POST", f"{gateway_url}/webhooks/shopify", body=body, headers=headers).status
                )
                answered.append(http.request("GET", f"{gateway_url}/members?email={email}").status)
                if number % 4 == 0:
                    answered.append(http.request("POST", f"{gateway_url}/_local/jobs/review").status)
            except urllib3.exceptions.HTTPError:  # refused or cut off: the stack stops
                done.wait(0.05)

    threads = [threading.Thread(target=send, args=(sender,), daemon=True) for sender in range(senders)]
    for thread in threads:
        thread.start()
    try:
        yield answered
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=35)


def wait_for(answered: list[int], count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(answered) < count:
        assert time.monotonic() < deadline, f"only {len(answered)} answers in {timeout:.0f}s"
        time.sleep(0.1)
    assert 200 in answered


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stopped_as_a_group_while_busy_stops_within_10_seconds_cleanly(stop_signal: signal.Signals) -> None:
    # Given `make serve` on free ports, busy with orders, look-ups and reviews
    serve = Serve()
    try:
        ready = serve.ready()
        for port in serve.ports.values():
            assert f"http://127.0.0.1:{port}" in ready
        assert any("SHOPIFY_WEBHOOK_SECRET" in line for line in serve.stdout)  # the development default is announced
        # where to click: the demo member logs in to the emulated shop and lands on their page with their points
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(serve.member_page(), timeout=30) as page:
            assert page.url.endswith("/apps/loyalty")
            shown = page.read().decode()
            points = re.search(r'data-testid="available">([^<]+)<', shown)
            assert points and int(re.sub(r"\D", "", points[1])) >= DEMO_POINTS, shown
        with busy(serve.gateway_url) as answered:
            wait_for(answered, 12)
            children = serve.children()
            assert kinds(children) == {"DynamoDB Local", "moto", "function instance"}
            # When its process group gets SIGTERM, or SIGINT as from Ctrl-C
            signalled = time.monotonic()
            os.killpg(serve.process.pid, stop_signal)
            code = serve.process.wait(timeout=30)
            took = time.monotonic() - signalled
        # Then it stops within 10 seconds, and nothing it started is left running
        assert code == 0
        assert took < 10, f"stopping took {took:.1f}s"
        assert not wait_until_none_running(children, timeout=1)
        # and it stopped cleanly: no traceback from it or its instances
        stdout, stderr = serve.output()
        assert "stopping..." in stdout
        assert "Traceback" not in stderr, stderr[-3000:]
    finally:
        serve.kill_everything()


def test_a_killed_serve_takes_dynamodb_local_moto_and_its_instances_with_it() -> None:
    # Given `make serve`, busy
    serve = Serve()
    try:
        serve.ready()
        with busy(serve.gateway_url, senders=2) as answered:
            wait_for(answered, 6)
            children = serve.children()
            assert kinds(children) == {"DynamoDB Local", "moto", "function instance"}
            # When it is killed with SIGKILL (no chance to stop anything)
            serve.process.kill()
            serve.process.wait()
        # Then its children notice and are gone within a few seconds
        left = wait_until_none_running(children, timeout=5)
        assert not left, f"still running: {sorted(kinds(left))}"
    finally:
        serve.kill_everything()


@pytest.mark.parametrize("variable", PORT_VARIABLES)
def test_a_taken_port_stops_start_up_at_once_naming_the_port_and_its_variable(variable: str) -> None:
    # Given a server that the stack did not start, listening on one of its ports
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When `make serve` starts with that port
        serve = Serve(**{variable: port})
        try:
            started = time.monotonic()
            code = serve.process.wait(timeout=60)
            took = time.monotonic() - started
            _, stderr = serve.output()
            # Then it stops at once with a message naming the port and the variable that moves it
            assert code == 1
            assert f"port {port}" in stderr
            assert variable in stderr
            assert "Traceback" not in stderr
            assert took < 10, f"took {took:.1f}s"
            # and it never talked to that server, nor started anything on the other ports
            taken.setblocking(False)
            with pytest.raises(BlockingIOError):
                taken.accept()
            for other, other_port in serve.ports.items():
                if other != variable:
                    with pytest.raises(ConnectionRefusedError):
                        socket.create_connection(("127.0.0.1", other_port), timeout=1).close()
        finally:
            serve.kill_everything()
