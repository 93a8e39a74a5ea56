"""Function instances, each in its own process, as Lambda runs each instance in its own container.

A function's instances are started when needed (a cold start: the handler module is imported in a fresh
interpreter) up to the function's concurrency; each handles one event at a time, and no two share anything
(Powertools keeps per-invocation state on module and class attributes, which is only safe one event at a
time per process). An invocation that raises comes back as `FunctionError`, as a failed invocation does.

`SharedClock` is the programme's clock when a driver moves it (the demo's simulated year): it lives in
shared memory, so every instance reads the same moment, each reading a microsecond after the last.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import threading
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from infra.local.processes import die_with_parent, start_child

if TYPE_CHECKING:
    import boto3

REGION = "eu-north-1"
ACCOUNT = "123456789012"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_spawn = multiprocessing.get_context("spawn")  # never fork: the driver process runs threads


class FunctionError(RuntimeError):
    """The handler raised: the invocation failed (the message holds the instance's traceback)."""


class SharedClock:
    """The programme's clock, shared by the driver and every instance: set to a moment by the driver; each reading
    is a microsecond after the one before, so entries written by different instances never share a time."""

    def __init__(self, start: datetime) -> None:
        self._micros = _spawn.Value("q", _micros(start))

    @property
    def now(self) -> datetime:
        return EPOCH + timedelta(microseconds=self._micros.value)

    def set(self, moment: datetime) -> None:
        with self._micros.get_lock():
            self._micros.value = max(self._micros.value, _micros(moment))

    def __call__(self) -> datetime:
        with self._micros.get_lock():
            self._micros.value += 1
            return EPOCH + timedelta(microseconds=self._micros.value)


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def lambda_context(function_name: str, timeout_seconds: int = 30) -> SimpleNamespace:
    deadline = time.monotonic() + timeout_seconds
    return SimpleNamespace(
        function_name=function_name,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}",
        memory_limit_in_mb=512,
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{function_name}",
        log_stream_name="local",
        get_remaining_time_in_millis=lambda: int(max(0.0, deadline - time.monotonic()) * 1000),
    )


def count_sends(session: boto3.Session, sent: Callable[[str, int], None]) -> None:
    """Call ``sent(queue URL, messages)`` for every message this process's clients send to SQS."""

    def remember_queue(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["local_queue_url"] = params.get("QueueUrl")

    def count(parsed: dict[str, Any], context: dict[str, Any], model: Any, **_: Any) -> None:
        messages = len(parsed.get("Successful", [])) if model.name == "SendMessageBatch" else int("MessageId" in parsed)
        if messages and context.get("local_queue_url"):
            sent(context["local_queue_url"], messages)

    for operation in ("SendMessage", "SendMessageBatch"):
        session.events.register(f"before-parameter-build.sqs.{operation}", remember_queue)
        session.events.register(f"after-call.sqs.{operation}", count)


_counting = threading.Lock()
_sinks: list[tuple[Counter[str], Callable[[], str] | None]] = []  # where each call is counted


def count_calls(calls: Counter[str], group: Callable[[], str] | None = None) -> Callable[[], None]:
    """Count every AWS API call this process makes, boto3's clients' and pynamodb's alike (pynamodb keeps a botocore
    session of its own per thread, so no event hook sees them all), as ``service.Operation`` keys, each prefixed
    with ``group()`` and a bar if given. Returns what stops this counting."""
    from botocore.client import BaseClient

    sink = (calls, group)
    with _counting:
        if not _sinks:  # botocore is wrapped once per process, however many counts are kept
            original = getattr(BaseClient._make_api_call, "__wrapped__", BaseClient._make_api_call)

            def counted(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
                key = f"{client.meta.service_model.service_name}.{operation_name}"
                with _counting:
                    for counts, grouped in _sinks:
                        counts[f"{grouped()}|{key}" if grouped else key] += 1
                return original(client, operation_name, api_params)

            counted.__wrapped__ = original  # type: ignore[attr-defined]
            BaseClient._make_api_call = counted  # type: ignore[method-assign]
        _sinks.append(sink)

    def stop() -> None:
        with _counting:
            if sink in _sinks:
                _sinks.remove(sink)

    return stop


def calls_so_far(calls: Counter[str]) -> Counter[str]:
    """A copy of ``calls`` as counted up to now (taken while no call is being counted)."""
    with _counting:
        return Counter(calls)


class Instance:
    """One instance of a function: a process that imported the handler, handling one event at a time."""

    def __init__(self, function: str, handler: str, environment: dict[str, str], clock: SharedClock | None) -> None:
        self.function = function
        self._connection, child = _spawn.Pipe()
        self._sending = threading.Lock()  # an event and the stack's request to stop never interleave on the pipe
        process = _spawn.Process(
            target=_serve,
            args=(child, function, handler, environment, clock, os.getpid()),
            name=f"{function}-instance",
            daemon=True,
        )
        try:
            self.process = start_child(process.start, process, _kill)
        finally:
            child.close()

    def invoke(self, event: dict[str, Any], timeout_seconds: int) -> tuple[Any, dict[str, int], dict[str, int]]:
        """The handler's answer, what the invocation sent to which queue, and the AWS calls it made."""
        try:
            with self._sending:
                self._connection.send((event, timeout_seconds))
            outcome, answer, sent, calls = self._connection.recv()
        except (EOFError, OSError):
            raise FunctionError(f"an instance of {self.function} exited") from None
        if outcome == "error":
            raise FunctionError(f"{self.function} failed:\n{answer}")
        return answer, sent, calls

    def request_stop(self) -> None:
        """Ask the instance to exit once the event in hand (if any) is answered."""
        with self._sending, contextlib.suppress(OSError):
            self._connection.send(None)

    def stop(self) -> None:
        """Exit after the event in hand; killed if still running 5 seconds later."""
        self.request_stop()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.kill()
        self._connection.close()

    def kill(self) -> None:
        _kill(self.process)


def _kill(process: multiprocessing.process.BaseProcess) -> None:
    process.kill()
    process.join()


class Function:
    """A function's instances, started as invocations need them, up to its concurrency."""

    def __init__(
        self,
        name: str,
        handler: str,
        environment: dict[str, str],
        timeout_seconds: int,
        concurrency: int,
        clock: SharedClock | None,
        sent: Callable[[str, int], None],
        calls: Counter[str] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler  # module.attribute
        self.environment = environment  # what template.yaml gives the function, resolved
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self.clock = clock
        self.sent = sent
        self.calls: Counter[str] = Counter() if calls is None else calls  # "function|service.Operation" -> calls
        self.instances: list[Instance] = []
        self._idle: list[Instance] = []
        self._starting = 0
        self._changed = threading.Condition()
        self._stopped = False

    def __call__(self, event: dict[str, Any], context: Any = None) -> Any:
        instance = self._acquire()
        try:
            answer, sent, calls = instance.invoke(event, self.timeout_seconds)
        except FunctionError:
            self._retire(instance)  # the handler raised (the instance goes on) or the instance died
            raise
        except BaseException:  # interrupted mid-invocation: that instance's answer would come to the next caller
            self._retire(instance, kill=True)
            raise
        for queue_url, count in sent.items():
            self.sent(queue_url, count)
        with _counting:
            self.calls.update({f"{self.name}|{call}": count for call, count in calls.items()})
        self._release(instance)
        return answer

    def _acquire(self) -> Instance:
        with self._changed:
            while True:
                if self._stopped:
                    raise FunctionError(f"{self.name} is stopped")
                if self._idle:
                    return self._idle.pop()
                if len(self.instances) + self._starting < self.concurrency:
                    self._starting += 1
                    break
                self._changed.wait()
        instance = None
        try:
            instance = Instance(self.name, self.handler, self.environment, self.clock)  # a cold start
        finally:
            with self._changed:
                self._starting -= 1
                stopped = self._stopped
                if instance is not None:
                    if stopped:
                        instance.process.kill()  # before `stop` can see that nothing is starting
                    else:
                        self.instances.append(instance)
                self._changed.notify_all()  # a start that failed leaves room for another
        if instance is not None and stopped:
            instance.stop()
            raise FunctionError(f"{self.name} is stopped")
        return instance

    def _release(self, instance: Instance) -> None:
        with self._changed:
            if not self._stopped:
                self._idle.append(instance)
            self._changed.notify()

    def _retire(self, instance: Instance, kill: bool = False) -> None:
        if kill:
            instance.kill()
        elif instance.process.is_alive():
            self._release(instance)
            return
        instance.stop()
        with self._changed:
            if instance in self.instances:
                self.instances.remove(instance)
            self._changed.notify()

    def close(self) -> None:
        """No more invocations: every instance is asked to exit once it has answered the event in hand."""
        with self._changed:
            self._stopped = True
            instances = list(self.instances)
            self._changed.notify_all()
        for instance in instances:
            instance.request_stop()

    def stop(self, deadline: float | None = None) -> None:
        """Close, wait for the instances to exit until ``deadline``, then kill those still running."""
        until = deadline or time.monotonic() + 5
        self.close()
        with self._changed:
            self._changed.wait_for(lambda: self._starting == 0, timeout=max(0.0, until - time.monotonic()))
            instances, self.instances, self._idle = self.instances, [], []
        for instance in instances:
            instance.request_stop()  # again: one may have started since `close`
            instance.process.join(timeout=max(0.0, until - time.monotonic()))
            if instance.process.is_alive():
                instance.kill()  # its invoker sees that it exited


def _serve(
    connection: Connection,
    function: str,
    handler_path: str,
    environment: dict[str, str],
    clock: SharedClock | None,
    parent_pid: int,
) -> None:
    """An instance's life: import the handler (the cold start), then one event at a time until told to stop. From
    its first line on it dies with the stack's process; before it, only the interpreter's start and this module's
    imports have run (nothing heavy, so that the moment comes soon)."""
    die_with_parent(parent_pid)
    import boto3

    os.environ.update(environment)
    from loyalty.clock import use_clock
    from loyalty.observability import metrics

    if clock is not None:
        use_clock(clock)
    sent: Counter[str] = Counter()
    count_sends(boto3._get_default_session(), lambda queue_url, messages: sent.update({queue_url: messages}))
    calls: Counter[str] = Counter()
    count_calls(calls)
    module, attribute = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module), attribute)
    metrics_disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true"
    if metrics_disabled:  # the driver asked for no metrics: an invocation without any is no news
        warnings.filterwarnings("ignore", message="No application metrics to publish")
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        event, timeout_seconds = request
        sent.clear()
        calls.clear()
        try:
            answer = handler(event, lambda_context(function, timeout_seconds))
            connection.send(("ok", answer, dict(sent), dict(calls)))
        except Exception:
            connection.send(("error", traceback.format_exc(), dict(sent), dict(calls)))
        finally:
            if metrics_disabled:
                metrics.clear_metrics()  # Powertools keeps disabled metrics, and prints them once 100 pile up
