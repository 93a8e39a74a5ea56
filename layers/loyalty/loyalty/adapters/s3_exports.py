"""Members' data exports in S3 (exports/<member id>/<name>.json), downloaded through a signed link."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3

from loyalty.ports.privacy import EXPORT_LINK_DAYS

PREFIX = "exports/"


@dataclass
class S3MemberExports:
    bucket: str
    client: Any = field(default_factory=lambda: boto3.client("s3"))

    def put(self, member_id: str, name: str, body: bytes) -> str:
        key = f"{PREFIX}{member_id}/{name}.json"
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ContentDisposition=f'attachment; filename="{name}.json"',
        )
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=EXPORT_LINK_DAYS * 24 * 3600
            )
        )

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
