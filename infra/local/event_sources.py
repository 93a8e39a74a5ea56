"""Lambda's event source mappings, on this machine: SQS queues and DynamoDB streams polled as Lambda polls them.

A queue is long-polled; once a message arrives, the batch fills for up to the mapping's batching window (or
until it holds `BatchSize` messages), goes to the function, and what succeeded is deleted in one batch call;
the `batchItemFailures` come back after a short redelivery delay and, past `maxReceiveCount`, go to the
dead-letter queue (SQS moves them). A stream is read a few times a second; its records are filtered as the
mapping filters, gathered for the batching window, and a failed batch is retried from its first failure, then
reported to the on-failure destination. Each mapping gets every record once and in order, as each of Lambda's
mappings reads the stream for itself; here one reader per table serves them all (`StreamFanOut`), so the stream is
read once a poll, not once per mapping. `Activity` keeps what `Stack.wait_idle` needs to know without asking
SQS over and over: which functions run, and how many messages each event-source queue still holds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3

LONG_POLL_SECONDS = 20  # an empty queue is long-polled this long, as Lambda's pollers do (the stack's stop ends it)
STREAM_POLL_SECONDS = 0.25  # Lambda reads a stream's shards about four times a second
SHARED_READ_SECONDS = 0.1  # a read this recent serves every mapping of the stream that has nothing new
REDELIVERY_SECONDS = 1  # a failed message stays invisible this long here (AWS: the visibility timeout)
SQS_BATCH_LIMIT = 10  # messages per ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch

Invoke = Callable[[str, dict[str, Any]], Any]
log = logging.getLogger(__name__)


@dataclass
class QueueSource:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    template_window_seconds: float  # the template's MaximumBatchingWindowInSeconds
    max_receive_count: int | None  # the queue's redrive policy: past it a failed message goes to the dead letters
    window_seconds: float = 0.0  # the window on the stack's time scale


@dataclass
class StreamSource:
    function: str
    table: str  # logical id
    batch_size: int
    template_window_seconds: float  # the template's MaximumBatchingWindowInSeconds
    max_retries: int
    patterns: list[dict[str, Any]]  # a record passes if it matches any (none: every record)
    on_failure_queue: str | None  # logical id
    window_seconds: float = 0.0  # the window on the stack's time scale


class Activity:
    """What runs and what waits: functions being invoked, messages on event-source queues, streams read to the end.

    Every change bumps `generation`, so a waiter can tell that nothing at all happened between two looks."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.generation = 0
        self.sends = 0  # bumped by every send to a queue: a filling batch waits for it
        self.running = 0
        self.waiters = 0  # drivers in Stack.wait_idle: while there are any, streams are read after each invocation
        self.outstanding: Counter[str] = Counter()  # queue URL -> messages sent and not yet deleted
        self.stream_quiet_since: dict[str, float] = {}  # stream source -> start of its latest read that found nothing

    def _bump(self) -> None:
        self.generation += 1
        self.changed.notify_all()

    def begin(self) -> None:
        with self.changed:
            self.running += 1
            self._bump()

    def end(self) -> None:
        with self.changed:
            self.running -= 1
            self._bump()

    def sent(self, queue_url: str, count: int) -> None:
        with self.changed:
            self.outstanding[queue_url] += count
            self.sends += 1
            self._bump()

    def gone(self, queue_url: str, count: int) -> None:
        """Messages deleted, or failed for the last time (SQS moves them to the dead-letter queue)."""
        with self.changed:
            self.outstanding[queue_url] -= count
            self._bump()

    def stream_quiet(self, function: str, read_started: float) -> None:
        with self.changed:
            self.stream_quiet_since[function] = read_started
            self.changed.notify_all()

    def wait_for_send(self, sends: int, timeout: float) -> None:
        """Wait until something is sent after `sends` were counted, or the timeout."""
        with self.changed:
            self.changed.wait_for(lambda: self.sends != sends, timeout=timeout)

    def streams_read(self, functions: list[str], since: float) -> bool:
        """Each of these stream sources has read its stream to the end, with nothing buffered, since `since`."""
        return all(self.stream_quiet_since.get(function, 0.0) >= since for function in functions)

    def quiet(self, queue_urls: list[str]) -> bool:
        """Nothing runs and no message sent to these queues waits (as far as this process has seen)."""
        return self.running == 0 and all(self.outstanding[url] <= 0 for url in queue_urls)


class QueuePoller:
    """One SQS event source mapping: receive, fill the batch for its window, invoke, delete or give back."""

    def __init__(self, source: QueueSource, invoke: Invoke, activity: Activity, stopping: threading.Event) -> None:
        self.source = source
        self.invoke = invoke
        self.activity = activity
        self.stopping = stopping
        self.sqs = boto3.client("sqs")

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                messages = self._receive(SQS_BATCH_LIMIT, LONG_POLL_SECONDS)
                if messages:
                    self._deliver(self._fill(messages))
            except Exception:  # the poller must outlive a bad call, as Lambda's does
                if self.stopping.is_set():
                    return  # moto may be gone already
                log.exception("polling the queue of %s failed", self.source.function)
                self.stopping.wait(1.0)

    def _receive(self, limit: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.source.queue_url,
            MaxNumberOfMessages=max(1, min(SQS_BATCH_LIMIT, limit)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=wait_seconds,
        )
        return list(response.get("Messages", []))

    def _fill(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The batching window: more messages until the batch is full or the window has passed."""
        window_ends = time.monotonic() + self.source.window_seconds
        while len(messages) < self.source.batch_size and not self.stopping.is_set():
            left = window_ends - time.monotonic()
            if left <= 0:
                break
            sends = self.activity.sends
            more = self._receive(self.source.batch_size - len(messages), 0)
            if more:
                messages += more
                continue
            self.activity.wait_for_send(sends, timeout=left)  # nothing yet: wait for a send or the window's end
        return messages

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        source = self.source
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": message.get("MessageAttributes", {}),
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": source.queue_arn,
                    "awsRegion": source.queue_arn.split(":")[3],
                }
                for message in messages
            ]
        }
        try:
            response = self.invoke(source.function, event)
            failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        except Exception as error:  # the whole invocation failed: as in AWS, every message comes back
            if self.stopping.is_set():
                return  # the stack stops: the batch stays on the queue
            log.warning("%s failed; its batch will be redelivered: %s", source.function, _last_line(error))
            failed = {message["MessageId"] for message in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        again = [m for m in messages if m["MessageId"] in failed]
        for chunk in _chunks(done):
            response = self.sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
            self.activity.gone(source.queue_url, len(response.get("Successful", [])))
        for chunk in _chunks(again):
            self.sqs.change_message_visibility_batch(
                QueueUrl=source.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": REDELIVERY_SECONDS}
                    for n, m in enumerate(chunk)
                ],
            )
        last_tries = [
            m
            for m in again
            if source.max_receive_count is not None
            and int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)) >= source.max_receive_count
        ]
        if last_tries:  # SQS moves them to the dead-letter queue instead of delivering them again
            self.activity.gone(source.queue_url, len(last_tries))


class StreamPoller:
    """One DynamoDB stream event source mapping: read, filter, gather for the window, invoke, retry, report."""

    def __init__(
        self,
        source: StreamSource,
        reader: StreamTap,
        invoke: Invoke,
        activity: Activity,
        stopping: threading.Event,
        failure_queue_url: str | None,
    ) -> None:
        self.source = source
        self.reader = reader
        self.invoke = invoke
        self.activity = activity
        self.stopping = stopping
        self.failure_queue_url = failure_queue_url
        self.wake = threading.Event()  # read now, not at the next poll: something may have been written
        self.woken_at = 0.0  # a read that started before this does not say the stream is read to its end

    def wake_up(self) -> None:
        self.woken_at = time.monotonic()
        self.wake.set()

    def run(self) -> None:
        source = self.source
        buffered: list[dict[str, Any]] = []
        first_buffered = 0.0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                fetched, started = self.reader.read(not_before=self.woken_at)
            except Exception:  # the poller must outlive a bad read, as Lambda's does
                if self.stopping.is_set():
                    return  # DynamoDB Local may be gone already
                log.exception("reading the stream of %s failed", source.table)
                self.stopping.wait(1.0)
                continue
            if fetched and not buffered:
                first_buffered = started
            buffered += [stream_record(record, self.reader.arn) for record in fetched]
            if buffered and (
                len(buffered) >= source.batch_size or time.monotonic() - first_buffered >= source.window_seconds
            ):
                batch, buffered = buffered[: source.batch_size], buffered[source.batch_size :]
                first_buffered = time.monotonic()
                self._deliver(batch)
                continue  # read on at once: the stream may hold more
            if not buffered:
                self.activity.stream_quiet(source.function, started)
                pause = STREAM_POLL_SECONDS
            else:
                pause = min(STREAM_POLL_SECONDS, max(0.0, first_buffered + source.window_seconds - time.monotonic()))
            self.wake.wait(pause)
            self.wake.clear()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Filter as the event source mapping does, invoke, retry a failed batch, then report it as AWS does."""
        source = self.source
        records = [r for r in batch if not source.patterns or any(matches(p, r) for p in source.patterns)]
        for attempt in range(source.max_retries + 1):
            if not records:
                return
            try:
                response = self.invoke(source.function, {"Records": records})
            except Exception as error:
                if self.stopping.is_set():
                    return  # the stack stops: neither retried nor reported
                log.warning("%s failed on attempt %d: %s", source.function, attempt + 1, _last_line(error))
                self.stopping.wait(min(5.0, 0.5 * 2**attempt))
                continue
            failures = [item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])]
            if not failures:
                return
            sequence = [record["dynamodb"]["SequenceNumber"] for record in records]
            records = records[sequence.index(min(failures, key=int)) :]  # retried from the first failure
        if self.failure_queue_url:
            boto3.client("sqs").send_message(
                QueueUrl=self.failure_queue_url,
                MessageBody=json.dumps(
                    {
                        "requestContext": {"functionArn": source.function, "condition": "RetryAttemptsExhausted"},
                        "DDBStreamBatchInfo": {
                            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                            "batchSize": len(records),
                            "streamArn": records[0]["eventSourceARN"],
                        },
                    }
                ),
            )


class StreamFanOut:
    """One reader of a table's stream for all its event source mappings: each mapping's tap gets every record once,
    in order; the stream is read when a tap has nothing left and no read since ``SHARED_READ_SECONDS`` (or since
    the tap was woken) has looked."""

    def __init__(self, reader: StreamReader) -> None:
        self.reader = reader
        self.arn = reader.arn
        self._lock = threading.Lock()
        self._taps: list[StreamTap] = []
        self._last_read = -1.0  # when the latest read of the stream started

    def tap(self) -> StreamTap:
        tap = StreamTap(self)
        with self._lock:
            self._taps.append(tap)
        return tap

    def read_for(self, tap: StreamTap, not_before: float) -> tuple[list[dict[str, Any]], float]:
        """The tap's records not yet taken, reading the stream first if it has none; and when the read that found
        them (or found nothing new) started."""
        with self._lock:
            now = time.monotonic()
            if not tap.pending and self._last_read < max(not_before, now - SHARED_READ_SECONDS):
                fetched = self.reader.read()
                self._last_read = now
                for each in self._taps:
                    each.pending += fetched
            taken, tap.pending = tap.pending, []
            return taken, self._last_read


class StreamTap:
    """One event source mapping's view of a shared stream reader."""

    def __init__(self, fan_out: StreamFanOut) -> None:
        self.fan_out = fan_out
        self.arn = fan_out.arn
        self.pending: list[dict[str, Any]] = []

    def read(self, not_before: float = 0.0) -> tuple[list[dict[str, Any]], float]:
        return self.fan_out.read_for(self, not_before)


class StreamReader:
    """Reads a table's stream shard by shard, resuming after the last record read when an iterator goes stale."""

    def __init__(self, endpoint_url: str, table_name: str) -> None:
        self.client = boto3.client("dynamodbstreams", endpoint_url=endpoint_url)
        table = boto3.client("dynamodb", endpoint_url=endpoint_url).describe_table(TableName=table_name)
        self.arn: str = table["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str] = {}
        self.last_sequence: dict[str, str] = {}
        self.finished: set[str] = set()
        self.next_discovery = 0.0

    def _iterator(self, shard_id: str) -> str:
        if shard_id in self.last_sequence:
            try:
                return str(
                    self.client.get_shard_iterator(
                        StreamArn=self.arn,
                        ShardId=shard_id,
                        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                        SequenceNumber=self.last_sequence[shard_id],
                    )["ShardIterator"]
                )
            except self.client.exceptions.TrimmedDataAccessException:
                pass
        return str(
            self.client.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
                "ShardIterator"
            ]
        )

    def read(self) -> list[dict[str, Any]]:
        if time.monotonic() >= self.next_discovery:
            for shard in self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
                shard_id = shard["ShardId"]
                if shard_id not in self.iterators and shard_id not in self.finished:
                    self.iterators[shard_id] = self._iterator(shard_id)
            self.next_discovery = time.monotonic() + 2.0
        fetched: list[dict[str, Any]] = []
        for shard_id, iterator in list(self.iterators.items()):
            try:
                response = self.client.get_records(ShardIterator=iterator, Limit=1000)
            except (
                self.client.exceptions.TrimmedDataAccessException,
                self.client.exceptions.ExpiredIteratorException,
            ):
                self.iterators[shard_id] = self._iterator(shard_id)
                continue
            records = response.get("Records", [])
            if records:
                self.last_sequence[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            fetched += records
            if response.get("NextShardIterator"):
                self.iterators[shard_id] = response["NextShardIterator"]
            else:
                del self.iterators[shard_id]
                self.finished.add(shard_id)
        return fetched


def stream_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A stream record as Lambda hands it over (DynamoDB JSON images, creation time in epoch seconds)."""
    change = dict(record["dynamodb"])
    for image in ("Keys", "NewImage", "OldImage"):
        if image in change:
            change[image] = {name: _attribute_value(value) for name, value in change[image].items()}
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):  # boto3 parsed it; Lambda sends epoch seconds
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": arn.split(":")[3],
        "dynamodb": change,
        "eventSourceARN": arn,
    }


def _attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    """botocore reads an empty map {"M": {}} as {}; Lambda sends the map."""
    if not value:
        return {"M": {}}
    if "M" in value:
        return {"M": {name: _attribute_value(item) for name, item in value["M"].items()}}
    if "L" in value:
        return {"L": [_attribute_value(item) for item in value["L"]]}
    return value


def matches(pattern: Any, value: Any) -> bool:
    """The subset of Lambda event filtering the template uses: nested keys, each a list of allowed values or
    ``{"exists": true|false}``."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, wanted in pattern.items():
            if isinstance(wanted, list) and {"exists": False} in wanted:
                if key in value:
                    return False
            elif key not in value or not matches(wanted, value[key]):
                return False
        return True
    if isinstance(pattern, list):  # as Lambda: ``exists`` matches a leaf value only (a typed image's "S", not it)
        return value in pattern or ({"exists": True} in pattern and not isinstance(value, dict | list))
    return bool(pattern == value)


def _last_line(error: Exception) -> str:
    """What went wrong, in a line (an instance's error carries its whole traceback)."""
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__


def _chunks(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [messages[n : n + SQS_BATCH_LIMIT] for n in range(0, len(messages), SQS_BATCH_LIMIT)]
