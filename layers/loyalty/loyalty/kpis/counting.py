"""Ledger entries into the monthly figures, as the table's stream brings them (functions/kpis)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from loyalty.errors import ConcurrentUpdateError
from loyalty.kpis.flows import (
    ACTIVE_MONTHS,
    active_moves,
    contribution,
    guest_contribution,
    is_activity,
    local_month,
    moves,
    nps_contribution,
    offer_arm,
    shift_month,
)
from loyalty.ledger.model import Entry, EntryKind
from loyalty.ledger.service import Ledger
from loyalty.offers.records import SendRecord, Status
from loyalty.ports.kpis import PROGRAMME, Count, Exposure, KpiStore, MemberMonths, MemberMove, Noted
from loyalty.ports.surveys import NpsAnswer
from loyalty.programme.orders import Order

MOVE_TRIES = 5
Changes = dict[tuple[str, str], dict[str, Count]]  # (month, group) -> counts
CENT = Decimal("0.01")
DECIDED = frozenset([Status.SENT, Status.REFUSED, Status.CAPPED, Status.FAILED, Status.HOLDOUT])


@dataclass
class KpiCounting:
    """``measured``: the offer triggers measured against a holdout, each member's orders counted for
    ``conversion_days`` after the decision; revenue in ``rates``' terms (currency -> what a unit is worth in the
    reporting currency; an order in another currency adds no revenue)."""

    ledger: Ledger
    store: KpiStore
    measured: tuple[str, ...] = ()
    conversion_days: int = 14
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def count(self, entries: Iterable[Entry]) -> list[Entry]:
        """Add each entry to its month's figures, for the programme and for the tier and segment its member's note
        counts them in (at first, their earned tier and segment as they stand now), with the note in one write;
        the notes (and the members with none yet) read together. Each entry once, however often it comes.
        Returns those added now."""
        counted = [(entry, flows) for entry in entries if any((flows := contribution(entry)).values())]
        notes = self.store.member_months({entry.member_id for entry, _ in counted})
        members = self.ledger.summaries({m for m, note in notes.items() if not note.tier}, expiry=False)
        added: list[Entry] = []
        for entry, flows in counted:
            member = members.get(entry.member_id)
            standing = self._groups(*((member.earned_tier, member.segment) if member is not None else (None, None)))
            marker = (local_month(self.ledger.rules, entry.created_at), f"{entry.member_id}#{entry.source_key}")
            decide = partial(self._entry, entry=entry, flows=flows, standing=standing)
            if self._note(entry.member_id, notes, marker, decide):
                added.append(entry)
            if entry.kind is EntryKind.ACCRUAL and self.measured:
                self._convert(entry)
        return added

    def _groups(self, tier: str | None, segment: str | None) -> tuple[str, str]:
        """The tier's and segment's groups (no tier yet: the lowest; no segment yet: ``segment#none``)."""
        return f"tier#{tier or self.ledger.rules.tiers[0].name}", f"segment#{segment or 'none'}"

    def _note(
        self,
        member_id: str,
        notes: dict[str, MemberMonths],
        marker: tuple[str, str],
        decide: Callable[[MemberMonths], tuple[MemberMonths, Changes]],
    ) -> bool:
        """Write what ``decide`` makes of the member's note (the note, and the counts by month and group) with
        ``marker``, from the note as read (``notes``, kept up to date); read again while it changes in between.
        False if the marker was written before (nothing changes)."""
        for _ in range(MOVE_TRIES):
            read = notes[member_id]
            noted, changes = decide(read)
            result = self.store.note_member(member_id, read, noted, changes, marker)
            if result is not Noted.CHANGED:
                notes[member_id] = noted if result is Noted.WRITTEN else read
                return result is Noted.WRITTEN
            notes |= self.store.member_months([member_id])
        raise ConcurrentUpdateError(f"member {member_id}'s months kept changing")  # the batch is retried

    def _entry(
        self, read: MemberMonths, entry: Entry, flows: Mapping[str, Count], standing: tuple[str, str]
    ) -> tuple[MemberMonths, Changes]:
        """The entry's flows in its month, for the programme and the member's noted groups (``standing`` if none
        are noted yet), and the note: the points they hold there, and for an order or a redemption their month
        (active from it for 12 months; an order counts them as a buyer of the month, returning if they first
        bought earlier; a month already noted, or an earlier one, changes nothing)."""
        month = local_month(self.ledger.rules, entry.created_at)
        tier, segment = (read.tier, read.segment) if read.tier and read.segment else standing
        counted_in = (PROGRAMME, tier, segment)
        held = int(flows.get("points_held", 0))
        noted = replace(read, tier=tier, segment=segment, held=read.held + held, latest=max(read.latest or "", month))
        counts = dict(flows)
        active: dict[str, int] = {}
        if is_activity(entry):
            if entry.kind is EntryKind.ACCRUAL and (read.bought is None or read.bought < month):
                returning = read.first_bought is not None and read.first_bought < month
                counts |= {"purchasers": 1, "returning_purchasers": int(returning)}
                noted = replace(noted, bought=month, first_bought=read.first_bought or month)
            if read.active is None or read.active < month:
                active = active_moves(read.active, month)
                noted = replace(noted, active=month)
        changes: Changes = {(month, group): dict(counts) for group in counted_in}
        if not (read.tier and read.segment):
            _adopt(changes, read, month, (tier, segment))
        for moved, change in active.items():
            for group in counted_in:
                _add(changes, moved, group, "active_change", change)
        return noted, changes

    def count_offers(self, records: Iterable[SendRecord]) -> int:
        """Each offer decision as the stream brings it: a message sent counts in its month, and a member an offer
        measured against its holdout was for is exposed (in the offered or the holdout arm), once. Returns the
        members exposed."""
        exposed = 0
        days = timedelta(days=self.conversion_days)
        for record in records:
            if record.status not in DECIDED:
                continue
            month = local_month(self.ledger.rules, record.decided_at)
            if record.status is Status.SENT:
                sent = {f"offers_sent#{record.trigger}": 1}
                key = f"offer-sent#{record.member_id}#{record.dedup}#{record.channel}"
                self.store.add(key, month, (PROGRAMME,), sent)
            if record.trigger in self.measured:
                arm, at = offer_arm(record.status.value), record.decided_at
                exposure = Exposure(record.dedup, record.trigger, arm, at, at + days, month)
                exposed += self.store.expose(record.member_id, exposure)
        return exposed

    def _convert(self, entry: Entry) -> None:
        """An order in the window of the member's measured offers: counted in each, once."""
        value = (entry.value or Decimal(0)) * self.rates.get(entry.currency or "", Decimal(0))
        revenue = value.quantize(CENT, rounding=ROUND_HALF_UP)
        key = entry.order_key or entry.source_key
        for _ in range(MOVE_TRIES):
            due = [
                exposure
                for exposure in self.store.exposures(entry.member_id)
                if exposure.decided_at <= entry.created_at <= exposure.until and key not in exposure.counted
            ]
            if all(self.store.convert(entry.member_id, exposure, key, revenue) for exposure in due):
                return
        raise ConcurrentUpdateError(f"member {entry.member_id}'s offers kept changing")  # the batch is retried

    def count_moves(self, changes: Iterable[MemberMove]) -> int:
        """Each member who joined or changed earned tier or segment, in the month it happened: the members of each
        tier and segment, and the programme's upgrades, downgrades and segment moves; and the member's active
        spell and the points they hold move from the groups their note counted them in to the new ones. Each
        change once. Returns the changes counted."""
        counted = [(move, added) for move in changes if (added := moves(self.ledger.rules, move))]
        notes = self.store.member_months({move.member_id for move, _ in counted})
        return sum(
            self._note(
                move.member_id,
                notes,
                (local_month(self.ledger.rules, move.at), f"move#{move.member_id}#{move.key}"),
                partial(self._move, move=move, added=added),
            )
            for move, added in counted
        )

    def _move(
        self, read: MemberMonths, move: MemberMove, added: Mapping[str, Mapping[str, Count]]
    ) -> tuple[MemberMonths, Changes]:
        """The move's counts in its month, and the note's groups the new ones: what the member's note counted in
        the old groups (their points and active spell) carried along, in the month of the move or, if later, the
        latest month counted (never before what was counted there)."""
        month = local_month(self.ledger.rules, move.at)
        tier, segment = self._groups(move.tier_after, move.segment_after)
        changes: Changes = {(month, group): dict(counts) for group, counts in added.items()}
        noted = replace(read, tier=tier, segment=segment)
        if not (read.tier and read.segment):
            _adopt(changes, read, month, (tier, segment))
        else:
            at = max(month, read.latest or month)
            noted = replace(noted, latest=at)
            for left, came in ((read.tier, tier), (read.segment, segment)):
                if left != came:
                    _carry(changes, read, at, left, came)
        return noted, changes

    def count_guest_orders(self, orders: Iterable[tuple[str, Order]]) -> int:
        """Each order of a shopper who is not a member (``buyer``: their hashed e-mail) in the month it was placed:
        the order and its value, and the shopper once a month; each once. Returns the orders counted."""
        counted = 0
        for buyer, order in orders:
            month = local_month(self.ledger.rules, order.placed_at)
            key = f"guest#{order.shop}#{order.order_id}"
            counted += self.store.add(key, month, (PROGRAMME,), guest_contribution(order))
            # each on its own marker: a retry after a failure between the two still counts the shopper, once
            self.store.add(f"guest-buyer#{buyer}", month, (PROGRAMME,), {"guest_purchasers": 1})
        return counted

    def count_enrolments(self, enrolled: Iterable[tuple[str, datetime]]) -> int:
        """Add each member who joined (member id, when) to the programme's figures of that month, once."""
        rules = self.ledger.rules
        return sum(
            self.store.add(f"enrolled#{member_id}", local_month(rules, at), (PROGRAMME,), {"members_enrolled": 1})
            for member_id, at in enrolled
        )

    def count_answers(self, changes: Iterable[tuple[NpsAnswer, NpsAnswer | None]]) -> int:
        """Add each NPS answer to its month, under the segment and tier kept with it; an answer that replaced an
        earlier one (the same member and survey, answered again) takes the earlier one off its month first. Each
        answer once, however often it comes. Returns the answers added."""
        added = 0
        for answer, replaced in changes:
            if replaced is not None and replaced.responded_at != answer.responded_at:
                taken = {name: -value for name, value in nps_contribution(replaced.score).items()}
                self.store.add(
                    f"nps-replaced#{_answer_key(replaced)}",
                    replaced.month,
                    (PROGRAMME, *self._groups(replaced.tier, replaced.segment)),
                    taken,
                )
            added += self.store.add(
                f"nps#{_answer_key(answer)}", answer.month, (PROGRAMME, *self._groups(answer.tier, answer.segment)),
                nps_contribution(answer.score),
            )  # fmt: skip
        return added


def _add(changes: Changes, month: str, group: str, name: str, value: int) -> None:
    kept = changes.setdefault((month, group), {})
    kept[name] = int(kept.get(name, 0)) + value


def _adopt(changes: Changes, read: MemberMonths, month: str, groups: tuple[str, str]) -> None:
    """A note kept before it named groups (the programme's active members only) whose active spell lasts past
    ``month``: the spell joins the groups from that month, so a later move carries what they hold."""
    lapse = shift_month(read.active, ACTIVE_MONTHS) if read.active else None
    if lapse is not None and lapse > month:
        for group in groups:
            _add(changes, month, group, "active_change", 1)
            _add(changes, lapse, group, "active_change", -1)


def _carry(changes: Changes, read: MemberMonths, at: str, left: str, came: str) -> None:
    """A member's points held and active spell (if it lasts past ``at``: until 12 months after their last active
    month) move from the group ``left`` to ``came`` in the month ``at``."""
    if read.held:
        _add(changes, at, left, "points_held", -read.held)
        _add(changes, at, came, "points_held", read.held)
    lapse = shift_month(read.active, ACTIVE_MONTHS) if read.active else None
    if lapse is not None and lapse > at:
        for group, sign in ((left, -1), (came, 1)):
            _add(changes, at, group, "active_change", sign)
            _add(changes, lapse, group, "active_change", -sign)


def _answer_key(answer: NpsAnswer) -> str:
    return f"{answer.member_id}#{answer.survey_id}#{answer.responded_at.isoformat()}"
