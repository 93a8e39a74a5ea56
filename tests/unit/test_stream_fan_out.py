"""The embedded stack's shared stream reader: every event source mapping on a table's stream gets every record once
and in order, while the stream is read once a poll instead of once per mapping."""

from __future__ import annotations

from typing import Any

from infra.local.event_sources import SHARED_READ_SECONDS, StreamFanOut


class Stream:
    """Stands in for StreamReader: what was written since the last read, and how often it was read."""

    arn = "arn:aws:dynamodb:eu-north-1:123456789012:table/t/stream/s"

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.reads = 0

    def write(self, *numbers: int) -> None:
        self.written += [{"dynamodb": {"SequenceNumber": str(n)}} for n in numbers]

    def read(self) -> list[dict[str, Any]]:
        self.reads += 1
        fetched, self.written = self.written, []
        return fetched


def numbers(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in records]


def test_each_mapping_gets_every_record_once_in_order_from_one_read() -> None:
    stream = Stream()
    fan_out = StreamFanOut(stream)  # type: ignore[arg-type]
    crm, codes, labels = fan_out.tap(), fan_out.tap(), fan_out.tap()
    stream.write(1, 2)
    assert numbers(crm.read()[0]) == [1, 2]
    stream.write(3)
    assert numbers(codes.read()[0]) == [1, 2]  # what the first read found, without reading again
    assert numbers(labels.read()[0]) == [1, 2]
    assert stream.reads == 1
    assert numbers(codes.read(not_before=float("inf"))[0]) == [3]  # woken: it reads, and so the others get 3 too
    assert numbers(crm.read()[0]) == [3] and numbers(labels.read()[0]) == [3]
    assert stream.reads == 2


def test_a_mapping_with_nothing_left_reads_when_the_last_read_is_old_or_before_it_was_woken() -> None:
    stream = Stream()
    fan_out = StreamFanOut(stream)  # type: ignore[arg-type]
    crm, codes = fan_out.tap(), fan_out.tap()
    records, read_at = crm.read()
    assert records == [] and stream.reads == 1
    assert codes.read() == ([], read_at) and stream.reads == 1  # a recent read says the stream is at its end
    records, later = codes.read(not_before=read_at + SHARED_READ_SECONDS / 10)  # woken after that read
    assert records == [] and later > read_at and stream.reads == 2
