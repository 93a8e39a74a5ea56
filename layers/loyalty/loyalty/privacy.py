"""A person's data on request (GDPR): all of it as JSON to download, or erased everywhere the programme keeps it
while every amount stays.

Erasure: the member's profile, e-mail guard and birthday (the ledger); their links to shop customers and the
guest orders held for their e-mail (the directory); what offer records keep of the person (the contact details
and template details a request carried, and the subject, which may greet them by name); the comments of their
NPS answers; their data exports; and failed deliveries that hold their e-mail or phone in the dead-letter queues.
The member item keeps when it was erased, which the CRM push takes as its cue to delete the journal records and
Tasks it wrote on the Contact. Ledger entries hold no personal data, so every amount and reason stays, as do
the answers' scores.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from loyalty.clock import now
from loyalty.ledger.service import Ledger
from loyalty.offers.records import OfferRecords
from loyalty.offers.requests import OfferRequest
from loyalty.ports.directory import Directory
from loyalty.ports.privacy import DeadLetters, MemberExports
from loyalty.ports.surveys import NpsAnswers

EXPORT_VERSION = 1


@dataclass(frozen=True)
class Erasure:
    """What an erasure removed, for the log and the answer (counts only: no personal data)."""

    member_id: str
    links: int  # shop customer links and held guest orders
    offers: int  # offer records that forgot the person
    comments: int  # NPS comments dropped
    exports: int
    dead_letters: int


@dataclass
class Privacy:
    ledger: Ledger
    directory: Directory
    offers: OfferRecords
    nps_answers: NpsAnswers
    exports: MemberExports
    dead_letters: DeadLetters
    clock: Callable[[], datetime] = now
    download_link: Callable[[str, str], str] | None = None  # (member, export name) -> a link, valid as the file

    def export(self, member_id: str, request_id: str) -> str:
        """The member's data as JSON (``member_data``), kept for download under the request's name; its download
        link (without one, where the file is kept: ``exports/<member id>/<name>.json``)."""
        body = json.dumps(self.member_data(member_id), ensure_ascii=False, indent=1, default=str)
        name = _file_name(request_id)
        self.exports.put(member_id, name, body.encode())
        return self.download_link(member_id, name) if self.download_link else f"exports/{member_id}/{name}.json"

    def member_data(self, member_id: str) -> dict[str, Any]:
        """Every personal field the programme keeps of the member and everything it recorded about them: the
        profile and consent, the tier and points, every ledger entry, the rewards they redeemed, their NPS
        answers and the offers decided for them."""
        member = self.ledger.member(member_id)
        summary = self.ledger.summary(member_id, expiry=False)
        return {
            "exportVersion": EXPORT_VERSION,
            "exportedAt": self.clock().isoformat(),
            "member": _plain(member),
            "summary": _plain(summary),
            "entries": [_plain(entry) for entry in self.ledger.entries(member_id)],
            "redemptions": [_plain(redemption) for redemption in self.ledger.redemptions(member_id)],
            "npsAnswers": [_plain(answer) for answer in self.nps_answers.of_member(member_id)],
            "offers": [_plain(record) for record in self.offers.sent(member_id)],
        }

    def erase(self, member_id: str) -> Erasure:
        """Remove the person's data everywhere the programme keeps it (see the module); again changes nothing."""
        member = self.ledger.member(member_id)
        emails = [value for value in (member.email, member.email_parked) if value]
        # what is found by the person's e-mail and phone first: a retry after a failure later still finds them
        dead_letters = self.dead_letters.drop_holding(emails, [member.phone] if member.phone else [])
        exports = self.exports.delete(member_id)
        links = self.directory.forget_person(member_id, member.email)
        self.ledger.erase_personal_data(member_id)
        comments = self.nps_answers.forget_comments(member_id)
        records = self.offers.sent(member_id)
        for record in records:
            request = OfferRequest.model_validate_json(record.request)
            kept = request.model_copy(update={"contact": None, "details": {}})
            self.offers.forget_person(member_id, record.dedup, record.channel, kept.model_dump_json())
        return Erasure(member_id, links, len(records), comments, exports, dead_letters)


def _file_name(request_id: str) -> str:
    """A file name from a request id (any text): letters, digits, dashes and dots."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in request_id)[:100] or "export"


def _plain(value: Any) -> Any:
    """A record as JSON-ready data (dates as ISO text by json's ``default``)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if hasattr(value, "value") and not isinstance(value, int | float | str | bool):  # an enum
        return value.value
    return value
