"""`make serve` as a user runs it: one "ready" line with the URLs, and SIGTERM stops it and every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra.local.dynamodb_local import free_port

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(status.parent.name)
            found |= {child} | _children(child)
    return found


def test_serve_prints_ready_and_sigterm_stops_every_child() -> None:
    ports = {
        "LOYALTY_GATEWAY_PORT": free_port(),
        "LOYALTY_DYNAMODB_PORT": free_port(),
        "LOYALTY_MOTO_PORT": free_port(),
    }
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "PYTHONPATH": f"{ROOT / 'layers/loyalty'}:{ROOT}"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("ready"):
                break
        ready = lines[-1]
        assert f"http://127.0.0.1:{ports['LOYALTY_GATEWAY_PORT']}" in ready
        assert f"http://127.0.0.1:{ports['LOYALTY_DYNAMODB_PORT']}" in ready
        assert any("SHOPIFY_WEBHOOK_SECRET" in line for line in lines)  # the development default is announced
        children = _children(process.pid)
        assert children  # DynamoDB Local runs as a child
        # When it gets SIGTERM
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        # Then no child is left running
        time.sleep(0.5)
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    finally:
        if process.poll() is None:
            process.kill()
