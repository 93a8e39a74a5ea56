"""The dead-letter queues that keep message bodies (webhook deliveries, offer requests), as an erasure reaches
them: every message is read, one that holds the person's data deleted, the others made visible again at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from loyalty.ports.privacy import finder

HIDDEN_SECONDS = 120  # long enough to read a queue through (a dead-letter queue holds few messages)
EMPTY_ANSWERS = 2  # long polls that found nothing before the queue counts as read through


@dataclass
class SqsDeadLetters:
    queue_urls: Sequence[str]
    client: Any = field(default_factory=lambda: boto3.client("sqs"))

    def drop_holding(self, emails: Sequence[str], phones: Sequence[str]) -> int:
        pattern = finder(emails, phones)
        if pattern is None:
            return 0
        dropped = 0
        for url in self.queue_urls:
            others: list[str] = []
            empty = 0
            while empty < EMPTY_ANSWERS:  # a receive may come back empty while messages wait: asked again
                answer = self.client.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=HIDDEN_SECONDS, WaitTimeSeconds=1
                )
                messages = answer.get("Messages", [])
                empty = 0 if messages else empty + 1
                for message in messages:
                    if pattern.search(message["Body"]):
                        self.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                        dropped += 1
                    else:
                        others.append(message["ReceiptHandle"])
            for start in range(0, len(others), 10):  # back at once, for a replay or the next erasure
                entries = [
                    {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for n, handle in enumerate(others[start : start + 10])
                ]
                self.client.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        return dropped
