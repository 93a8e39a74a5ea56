"""Erasing a person (GDPR): their personal data goes from every store that holds it; amounts and decisions stay."""

from __future__ import annotations

from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_offers import OfferStore


def erase_member(ledger: Ledger, offers: OfferStore, member_id: str) -> None:
    """The member item's profile, the e-mail guard and the birthday (the ledger), and the contact details kept
    with offer records. Ledger entries hold no personal data, so every amount and reason stays."""
    ledger.erase_personal_data(member_id)
    offers.erase_personal_data(member_id)
