"""The monthly report in S3: one object per file, server-side encrypted by the bucket's default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3


@dataclass
class S3ReportStore:
    bucket: str
    client: Any = field(default_factory=lambda: boto3.client("s3"))

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return f"s3://{self.bucket}/{key}"
