"""Members' data exports in S3 (exports/<member id>/<name>.json; the bucket's lifecycle removes them after a
week), downloaded through the member page's signed link (loyalty.rewards.page_links.export_link)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3

PREFIX = "exports/"


def _key(member_id: str, name: str) -> str:
    return f"{PREFIX}{member_id}/{name}.json"


@dataclass
class S3MemberExports:
    bucket: str
    client: Any = field(default_factory=lambda: boto3.client("s3"))

    def put(self, member_id: str, name: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=_key(member_id, name), Body=body, ContentType="application/json")

    def read(self, member_id: str, name: str) -> bytes | None:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=_key(member_id, name))
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(found["Body"].read())

    def delete(self, member_id: str) -> int:
        """Every version of every export of the member (a versioned bucket keeps old ones)."""
        deleted = 0
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=f"{PREFIX}{member_id}/"
        )
        for page in pages:
            versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            if versions:
                objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
                deleted += len(page.get("Versions", []))
        return deleted
