"""Erasing a person (GDPR): their personal data goes from every store that holds it; amounts and decisions stay."""

from __future__ import annotations

from loyalty.ledger.service import Ledger
from loyalty.offers.records import OfferRecords
from loyalty.offers.requests import OfferRequest
from loyalty.ports.surveys import NpsAnswers


def erase_member(ledger: Ledger, offers: OfferRecords, nps_answers: NpsAnswers, member_id: str) -> int:
    """The member's profile, e-mail guard and birthday (the ledger), what offer records keep of the person (the
    contact details and template details a request carried, and the subject, which may greet them by name) and
    the comments of their NPS answers. Ledger entries hold no personal data, so every amount and reason stays, as
    do the answers' scores. Returns the offer records changed."""
    ledger.erase_personal_data(member_id)
    nps_answers.forget_comments(member_id)
    records = offers.sent(member_id)
    for record in records:
        request = OfferRequest.model_validate_json(record.request)
        kept = request.model_copy(update={"contact": None, "details": {}})
        offers.forget_person(member_id, record.dedup, record.channel, kept.model_dump_json())
    return len(records)
