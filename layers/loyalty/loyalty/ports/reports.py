"""Where the monthly report is kept: a file store (S3 in AWS).

Implemented by loyalty.adapters.s3_reports and loyalty.fakes.reports.
"""

from __future__ import annotations

from typing import Protocol


class ReportStore(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> str:
        """Keep ``body`` under ``key`` (replacing what was there); where it is kept (an s3:// address)."""
        ...
