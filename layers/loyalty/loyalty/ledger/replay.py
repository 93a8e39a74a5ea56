"""What a member's entries say on their own: the purchases and referrals they record, the tier they lead to, and
whether the member's stored state agrees with them (the ledger invariants, checked for audits and tests)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import date

from loyalty.ledger.model import Entry, EntryKind
from loyalty.ledger.state import MemberState
from loyalty.programme.rules import ProgramRules
from loyalty.programme.segments import Purchase, assign_segment, segment_window_start
from loyalty.programme.tiers import TierOverride, assess, assessment_due, tier_in_force, upgrade


def purchases_from(entries: Iterable[Entry]) -> tuple[list[Purchase], int]:
    """The purchases and the number of referrals the entries record; orders refunded in full are left out."""
    accruals: dict[str, Entry] = {}
    kept: dict[str, int] = {}
    referrals = 0
    for entry in entries:
        if entry.kind is EntryKind.ACCRUAL and entry.order_key and entry.placed_on:
            accruals[entry.order_key] = entry
            kept[entry.order_key] = kept.get(entry.order_key, 0) + entry.lifetime
        elif entry.kind is EntryKind.REVERSAL and entry.order_key:
            kept[entry.order_key] = kept.get(entry.order_key, 0) + entry.lifetime
        elif entry.kind is EntryKind.BONUS and entry.source_key.startswith("bonus#referral#"):
            referrals += 1
    purchases = [
        Purchase(
            order_key=key,
            placed_on=accrual.placed_on,
            base_points=accrual.base_points or 0,
            discounted=bool(accrual.discounted),
            in_campaign=bool(accrual.campaigns or accrual.offers),
            categories=accrual.categories,
        )
        for key, accrual in accruals.items()
        if accrual.placed_on is not None and kept.get(key, 0) > 0
    ]
    return purchases, referrals


def replay_tier(rules: ProgramRules, entries: Iterable[Entry]) -> tuple[str | None, date | None, list[str]]:
    """The earned tier and its period end recomputed from the ledger, checking every recorded decision.

    Walks the entries in the order they were written: qualifying points change the months they name, an
    accrual must have earned at the tier in force and reached exactly the tier its running total reached,
    and each `tier` entry must be what `assess` decides from the points at that time. Returns the tier, the
    period end and what did not agree (empty when the ledger explains the tier)."""
    held: str | None = None
    period_end: date | None = None
    override: TierOverride | None = None
    buckets: dict[str, int] = {}
    problems: list[str] = []
    for entry in sorted(entries, key=lambda e: (e.created_at, e.source_key)):
        day = rules.local_date(entry.created_at)
        if entry.qualifying and entry.month:
            buckets[entry.month] = buckets.get(entry.month, 0) + entry.qualifying
        if entry.kind is EntryKind.TIER_OVERRIDE and entry.tier and entry.valid_until:
            override = TierOverride(entry.tier, entry.valid_until, entry.reason, entry.actor or "")
        elif entry.kind is EntryKind.ACCRUAL:
            in_force = tier_in_force(rules, held, override, day)
            if entry.tier != in_force:
                problems.append(f"{entry.source_key} earned at tier {entry.tier}, but {in_force} was in force")
            reached = upgrade(rules, held, buckets, day)
            expected = (reached[0].name, reached[1]) if reached else (None, None)
            if (entry.tier_reached, entry.tier_period_end) != expected:
                problems.append(f"{entry.source_key} reached {entry.tier_reached}; its running total says otherwise")
            if reached:
                held, period_end = reached[0].name, reached[1]
        elif entry.kind is EntryKind.TIER:
            due = assessment_due(rules, held, period_end)
            if due is None or period_end is None or held is None or due > day:
                problems.append(f"{entry.source_key} decided a tier that was not due on {day}")
                continue
            decided = assess(rules, held, period_end, buckets, day)
            if (decided.tier, decided.period_end) != (entry.tier, entry.tier_period_end):
                problems.append(f"{entry.source_key} decided {entry.tier}; the points say {decided.tier}")
            held, period_end = decided.tier, decided.period_end
    return held, period_end, problems


def check_invariants(rules: ProgramRules, member: MemberState, entries: list[Entry]) -> list[str]:
    """The ledger invariants for one member; returns what is violated (empty when all hold)."""
    problems = []
    sums = {
        "available": sum(e.points for e in entries),
        "pending": sum(e.pending for e in entries),
        "lifetime": sum(e.lifetime for e in entries),
        "released": sum((e.lot_end or 0) - (e.lot_start or 0) for e in entries),
        "expired": -sum(e.points for e in entries if e.kind is EntryKind.EXPIRY),
        "redeemed": -sum(e.points for e in entries if e.kind is EntryKind.REDEMPTION),
    }
    for name, total in sums.items():
        if getattr(member, name) != total:
            problems.append(f"{name} is {getattr(member, name)} but its entries sum to {total}")
    if sum(member.qualifying.values()) != sum(e.qualifying for e in entries):
        problems.append(
            f"qualifying is {sum(member.qualifying.values())} but entries sum to {sum(e.qualifying for e in entries)}"
        )
    if member.available < 0 or member.pending < 0:
        problems.append(f"negative balance: available {member.available}, pending {member.pending}")
    if member.released - member.consumed != member.available:
        problems.append("available differs from released minus consumed")
    if member.segment and member.segment_at and member.segment_on:
        since = segment_window_start(rules.segments, member.segment_on)
        recorded = [e for e in entries if since <= e.created_at <= member.segment_at]
        purchases, referrals = purchases_from(recorded)
        segment = assign_segment(
            rules.segments, purchases, referrals, rules.local_date(member.enrolled_at), member.segment_on
        )
        if (segment.name, segment.reason) != (member.segment, member.segment_reason):
            problems.append(f"segment is {member.segment}, but the entries give {segment.name}: {segment.reason}")
    tier, period_end, tier_problems = replay_tier(rules, entries)
    problems += tier_problems
    if (tier, period_end) != (member.tier, member.tier_period_end):
        problems.append(
            f"tier is {member.tier} until {member.tier_period_end}, but the entries give {tier} until {period_end}"
        )
    lots = sorted((e for e in entries if e.lot_end is not None), key=lambda e: e.lot_start or 0)
    for older, newer in itertools.pairwise(lots):
        if older.lot_end != newer.lot_start:
            problems.append(f"lot stream has a gap or overlap at {older.source_key}")
        if older.expires_on and newer.expires_on and older.expires_on > newer.expires_on:
            problems.append(f"lot {newer.source_key} expires before the older {older.source_key}")
    return problems
