"""Starting and stopping the embedded stack's processes so that none outlives the stack, even when it is killed.

`make serve` and `make demo` run in two processes: the one started from the terminal (the front) starts the stack
in a child process of a session of its own, so a Ctrl-C or SIGTERM sent to the terminal's process group reaches the
front only. The front passes one SIGTERM on, and kills the stack if it has not stopped within STOP_LIMIT_SECONDS; the
stack stops its children itself (DynamoDB Local, moto, the function instances), none of which ever gets a signal
meant for the group halfway through its start.

Every child process is also asked, on Linux, to be sent SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), so that
nothing outlives a stack killed with SIGKILL. The kernel sends it when the *thread* that started the child ends, so
the stack starts its children from one thread that lives as long as the process (the launcher), never from a
gateway request's or a poller's thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

Child = TypeVar("Child")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_LIMIT_SECONDS = 8.0  # the front kills a stack that has not stopped this long after the first signal
IN_OWN_SESSION = "LOYALTY_LOCAL_STACK_PROCESS"  # set for the stack's process by the front
_PR_SET_PDEATHSIG = 1


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


# ------------------------------------------------------------------------------------------ the front


def run_in_own_session(main: Callable[[], int]) -> int:
    """Run this very command again as a child in a session of its own, where ``main`` runs; pass Ctrl-C and SIGTERM
    on to it as one SIGTERM, and kill it if it has not stopped STOP_LIMIT_SECONDS later. Returns its exit code."""
    if os.environ.pop(IN_OWN_SESSION, None):
        return main()
    stop_by: list[float] = []
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, lambda signum, frame: stop_by.append(time.monotonic() + STOP_LIMIT_SECONDS))
    child = start_process([sys.executable, *sys.orig_argv[1:]], env={**os.environ, IN_OWN_SESSION: "1"})
    stopping = False
    while child.poll() is None:
        if stop_by and not stopping:
            stopping = True
            child.terminate()
        if stop_by and time.monotonic() > stop_by[0]:
            print(f"error: not stopped within {STOP_LIMIT_SECONDS:.0f}s; killed", file=sys.stderr, flush=True)
            child.kill()  # what it started dies with it (PR_SET_PDEATHSIG)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.1)
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


def interrupt_on_stop_signals() -> None:
    """In the stack's process: SIGTERM (and Ctrl-C, when run by hand) raise KeyboardInterrupt in the main thread,
    once; the stop that follows is bounded, so signals that come while it runs are ignored rather than cut it short."""

    def interrupt(signum: int, frame: object) -> None:
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        raise KeyboardInterrupt

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, interrupt)


# ------------------------------------------------------------------------------------------ the stack's children


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()  # looked up once: it is called between fork and exec


def die_with_parent(parent_pid: int) -> None:
    """In a child: be killed when the thread that started it ends (on Linux); exit now if the parent is gone."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os._exit(1)


class _Launcher:
    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, start: Callable[[], Child], abandon: Callable[[Child], None]) -> Child:
        """``start()`` run by the launcher thread; if this thread is interrupted meanwhile, the child is abandoned."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="child-launcher", daemon=True)
                self._thread.start()
        started: Future[Child] = Future()
        self._requests.put((start, started))
        try:
            return started.result()
        except BaseException:
            with contextlib.suppress(BaseException):
                abandon(started.result())  # interrupted while it started: nobody else knows of it
            raise

    def _run(self) -> None:
        while True:
            start, started = self._requests.get()
            try:
                started.set_result(start())
            except BaseException as error:
                started.set_exception(error)


_launcher = _Launcher()


def start_process(args: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """A process in a session of its own (out of reach of signals sent to this one's group), killed if this one
    dies."""
    parent = os.getpid()
    return _launcher.start(
        lambda: subprocess.Popen(args, start_new_session=True, preexec_fn=lambda: die_with_parent(parent), **popen),
        _kill_process,
    )


def start_child(start: Callable[[], None], child: Child, abandon: Callable[[Child], None]) -> Child:
    """``start()`` (a multiprocessing Process's) run by the launcher thread; the child calls `die_with_parent`."""

    def run() -> Child:
        start()
        return child

    return _launcher.start(run, abandon)


def _kill_process(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def stop_processes(processes: Iterable[subprocess.Popen[bytes] | None], grace_seconds: float = 2.0) -> None:
    """SIGTERM to all at once, SIGKILL to those still running after ``grace_seconds``; all reaped."""
    running = [process for process in processes if process is not None and process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    deadline = time.monotonic() + grace_seconds
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
