"""The report store in memory."""

from __future__ import annotations


class InMemoryReportStore:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self.files[key] = (body, content_type)
        return f"memory://{key}"
