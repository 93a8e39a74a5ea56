"""The embedded stack counts every AWS call a process makes, by service and operation (what `make demo` prints)."""

from __future__ import annotations

from collections import Counter

import boto3
from botocore.stub import Stubber

from infra.local.instances import calls_so_far, count_calls


def test_every_call_is_counted_by_operation_for_each_count_until_it_stops() -> None:
    mine: Counter[str] = Counter()
    theirs: Counter[str] = Counter()
    stop_mine = count_calls(mine, lambda: "driver")
    stop_theirs = count_calls(theirs)
    sqs = boto3.client("sqs", region_name="eu-north-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sqs) as stub:
        for _ in range(3):
            stub.add_response("list_queues", {})
        sqs.list_queues()
        sqs.list_queues()
        stop_mine()
        sqs.list_queues()
    stop_theirs()
    assert calls_so_far(mine) == Counter({"driver|sqs.ListQueues": 2})
    assert theirs == Counter({"sqs.ListQueues": 3})
