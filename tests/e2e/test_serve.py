"""`make serve` as a user runs it: one "ready" line with the URLs, and SIGTERM stops it and every child; a port
already taken stops it at once, naming the port and the variable that moves it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from infra.local.dynamodb_local import free_port

ROOT = Path(__file__).resolve().parents[2]
PORT_VARIABLES = ("LOYALTY_GATEWAY_PORT", "LOYALTY_DYNAMODB_PORT", "LOYALTY_MOTO_PORT", "LOYALTY_SALESFORCE_PORT")


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


def test_serve_prints_ready_and_sigterm_stops_every_child() -> None:
    serve = Serve()
    try:
        ready = serve.ready()
        for port in serve.ports.values():
            assert f"http://127.0.0.1:{port}" in ready
        assert any("SHOPIFY_WEBHOOK_SECRET" in line for line in serve.stdout)  # the development default is announced
        children = serve.children()
        assert children  # DynamoDB Local runs as a child
        # When it gets SIGTERM
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=30) == 0
        # Then no child is left running
        assert not wait_until_none_running(children, timeout=0.5)
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
