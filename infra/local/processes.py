"""Stopping the embedded stack's child processes (DynamoDB Local, moto) so that none outlives the stack, and making
sure that it starts only on ports that nothing else listens on."""

from __future__ import annotations

import socket
import subprocess


class PortInUseError(RuntimeError):
    """A port the stack needs is taken (another embedded stack, or a server left over)."""


def ensure_port_free(port: int, what: str, variable: str) -> None:
    """Raise PortInUseError, naming the port and the variable that moves it, if something listens on ``port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no obstacle
        try:
            sock.bind(("", port))  # every address: DynamoDB Local listens on all of them
        except OSError:
            raise PortInUseError(
                f"port {port} for {what} is already in use; set {variable} to a free port, or stop what listens "
                "there (another embedded stack, or one left over)"
            ) from None


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s; always reaped."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
