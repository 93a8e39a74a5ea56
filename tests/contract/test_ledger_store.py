"""The ledger store's contract: loads, and commits that apply all or nothing, on the fake and on DynamoDB Local."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from loyalty.errors import UnknownMemberError
from loyalty.ledger.model import Entry, EntryKind
from loyalty.ledger.state import (
    Commit,
    EmailMove,
    LedgerChange,
    LineState,
    MemberAndOrder,
    MemberChange,
    MemberExpectations,
    MemberState,
    OfferGrant,
    OrderChange,
    OrderState,
    OrderStatus,
    Redemption,
    RedemptionStatus,
    RedemptionWrite,
    RewardUses,
)
from loyalty.programme.tiers import TierOverride
from tests.contract.conftest import Stores, due

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_numbers = itertools.count()


def enrolled(stores: Stores, email: str | None = None, **profile: object) -> MemberState:
    member = MemberState(
        member_id=f"m{next(_numbers)}",
        enrolled_at=NOW,
        email=email,
        last_activity=NOW,
        profile_updated_at=NOW,
        **profile,  # type: ignore[arg-type]
    )
    assert stores.ledger.enrol(member, date(2026, 3, 3)) is Commit.APPLIED
    return member


def entry(member_id: str, key: str, at: datetime = NOW, **fields: object) -> Entry:
    values = {"points": 0, "reason": "why", **fields}
    return Entry(member_id=member_id, source_key=key, kind=EntryKind.BONUS, created_at=at, **values)  # type: ignore[arg-type]


def credit(member_id: str, key: str, points: int, start: int, expires_on: date, at: datetime = NOW) -> LedgerChange:
    lot = entry(member_id, key, at, points=points, lifetime=points, lot_start=start, lot_end=start + points)
    lot = lot.model_copy(update={"expires_on": expires_on})
    change = MemberChange(
        member_id,
        add={"available": points, "released": points, "lifetime": points},
        sets={"lot_expiry_max": expires_on, "last_activity": at},
        expect=MemberExpectations(released=start),
    )
    return LedgerChange(entry=lot, member=change)


def test_enrolment_stores_the_member_once_and_one_member_per_email(stores: Stores) -> None:
    # Given a member enrolled with an e-mail address
    member = enrolled(stores, "Anna.Berg@Example.com", first_name="Anna", locale="sv_SE", email_consent=True,
                      email_consent_at=NOW)  # fmt: skip
    # Then the member reads back as stored, with every counter at zero
    assert stores.ledger.member(member.member_id) == member
    assert stores.ledger.member_for_email(" anna.berg@example.COM ") == member.member_id
    # When the same member is enrolled again, or another member with the same address
    assert stores.ledger.enrol(member, date(2026, 3, 3)) is Commit.ALREADY_APPLIED
    other = replace(member, member_id="someone-else", email="anna.berg@example.com")
    # Then the second is refused as a conflict and nothing of it is stored
    assert stores.ledger.enrol(other, date(2026, 3, 3)) is Commit.CONFLICT
    assert stores.ledger.member("someone-else") is None
    # And the member is in the review cycle from the day given
    reviews = due(stores.job_runs, stores.job_runs.reviews_due_by(date(2026, 3, 3)))
    assert member.member_id in {work.member_id for work in reviews}


def test_members_are_read_together_and_the_unknown_left_out(stores: Stores) -> None:
    # Given more members than one batch read takes (100)
    members = [enrolled(stores, first_name=f"M{n}") for n in range(105)]
    ids = [m.member_id for m in members]
    # When they are read together with an id no member has
    found = stores.ledger.members([*ids, "nobody", ids[0]])
    # Then each reads back as stored, and the unknown id is not there
    assert found == {m.member_id: m for m in members}
    assert stores.ledger.members([]) == {}


def test_an_id_longer_than_any_key_finds_no_one(stores: Stores) -> None:
    # Given ids and an address of 2,100 characters, as a caller may send (DynamoDB refuses keys that long)
    member, long = enrolled(stores), "x" * 2100
    # Then they are simply not there
    assert stores.ledger.member(long) is None
    assert stores.ledger.members([long, member.member_id]) == {member.member_id: member}
    assert stores.ledger.member_for_email(long + "@example.com") is None
    assert stores.directory.member_for_customer("shopify:a", long) is None


def test_a_change_applies_its_entry_deltas_and_values_together(stores: Stores) -> None:
    member = enrolled(stores)
    override = TierOverride(tier="gold", valid_until=date(2026, 6, 30), reason="VIP event", actor="005x")
    change = LedgerChange(
        entry=entry(member.member_id, "accrual#s#1", pending=40, lifetime=40, qualifying=40, month="2026-03"),
        member=MemberChange(
            member.member_id,
            add={"pending": 40, "lifetime": 40},
            qualifying={"2026-03": 40},
            bump_qualifying_version=True,
            sets={"tier": "silver", "tier_period_end": date(2027, 3, 2), "tier_override": override},
            expect=MemberExpectations(qualifying_version=0),
        ),
    )
    # When it is committed
    assert stores.ledger.commit(change) is Commit.APPLIED
    # Then the entry, the counters and the values are all there
    assert stores.ledger.entry(member.member_id, "accrual#s#1") == change.entry
    stored = stores.ledger.member(member.member_id)
    assert stored is not None
    assert (stored.pending, stored.lifetime, stored.available) == (40, 40, 0)
    assert (stored.qualifying, stored.qualifying_version) == ({"2026-03": 40}, 1)
    assert (stored.tier, stored.tier_period_end, stored.tier_override) == ("silver", date(2027, 3, 2), override)
    # And a value set to None is removed
    clear = MemberChange(member.member_id, sets={"tier_override": None, "tier_period_end": None})
    assert stores.ledger.commit(LedgerChange(entry=entry(member.member_id, "tier#x"), member=clear)) is Commit.APPLIED
    stored = stores.ledger.member(member.member_id)
    assert stored is not None and (stored.tier_override, stored.tier_period_end, stored.tier) == (None, None, "silver")


def test_an_entry_written_before_means_already_applied_and_nothing_changes(stores: Stores) -> None:
    member = enrolled(stores)
    first = credit(member.member_id, "bonus#signup#1", 10, 0, date(2027, 3, 31))
    assert stores.ledger.commit(first) is Commit.APPLIED
    before = stores.ledger.member(member.member_id)
    # When the same source is committed again, even with expectations that no longer hold
    assert stores.ledger.commit(first) is Commit.ALREADY_APPLIED
    # Then nothing changed: the entry key decides
    assert stores.ledger.member(member.member_id) == before
    assert [e.source_key for e in stores.ledger.entries(member.member_id)] == ["bonus#signup#1"]


@pytest.mark.parametrize(
    "expect",
    [
        MemberExpectations(qualifying_version=3),
        MemberExpectations(released=5),
        MemberExpectations(consumed=1),
        MemberExpectations(available_at_least=11),
    ],
)
def test_a_change_whose_expectations_fail_writes_nothing(stores: Stores, expect: MemberExpectations) -> None:
    # Given a member with 10 points available
    member = enrolled(stores)
    assert stores.ledger.commit(credit(member.member_id, "bonus#signup#1", 10, 0, date(2027, 3, 31))) is Commit.APPLIED
    before = stores.ledger.member(member.member_id)
    # When a change relies on something that is not so
    taking = MemberChange(member.member_id, add={"available": -11, "consumed": 11}, expect=expect)
    outcome = stores.ledger.commit(
        LedgerChange(entry=entry(member.member_id, "redemption#r1", points=-11), member=taking)
    )
    # Then it is a conflict, and neither its entry nor its counters were written
    assert outcome is Commit.CONFLICT
    assert stores.ledger.entry(member.member_id, "redemption#r1") is None
    assert stores.ledger.member(member.member_id) == before


def test_a_change_for_a_missing_member_is_a_conflict(stores: Stores) -> None:
    change = MemberChange("nobody", add={"available": -1}, expect=MemberExpectations(available_at_least=1))
    assert stores.ledger.commit(LedgerChange(entry=entry("nobody", "redemption#r"), member=change)) is Commit.CONFLICT
    assert stores.ledger.entry("nobody", "redemption#r") is None


def test_an_order_is_written_only_over_the_version_read(stores: Stores) -> None:
    member = enrolled(stores)
    order = OrderState(
        order_key="shopify:shop#1001",
        version=1,
        member_id=member.member_id,
        status=OrderStatus.PENDING,
        earned=30,
        left=30,
        qualifying_earned=30,
        qualifying_left=30,
        qualifying_month="2026-03",
        earned_on=date(2026, 3, 2),
        release_on=date(2026, 4, 1),
        lines={"1": LineState(2, 2, 20, 20), "2": LineState(1, 1, 10, 10)},
    )
    # When the order is created, and then created again from the same (empty) read
    assert stores.ledger.commit(LedgerChange(order=OrderChange(order))) is Commit.APPLIED
    assert stores.ledger.commit(LedgerChange(order=OrderChange(order))) is Commit.CONFLICT
    # Then the first write stands, and reads back whole, alone and with its member
    assert stores.ledger.order("shopify:shop#1001") == order
    read = stores.ledger.member_and_order(member.member_id, "shopify:shop#1001", "shopify:shop")
    assert (read.member, read.order) == (member, order)
    # And the next write must say it read version 1
    refunded = replace(
        order, version=2, left=20, refunds=frozenset({"r1"}), lines={**order.lines, "2": LineState(1, 0, 10, 0)}
    )
    assert stores.ledger.commit(LedgerChange(order=OrderChange(refunded))) is Commit.APPLIED
    assert stores.ledger.commit(LedgerChange(order=OrderChange(replace(refunded, left=0)))) is Commit.CONFLICT
    assert stores.ledger.order("shopify:shop#1001") == refunded
    # And a pending order is found from its release date on, not before, and no longer once released
    assert due(stores.job_runs, stores.job_runs.releases_due_by(date(2026, 3, 31))) == []
    assert [w.order_id for w in due(stores.job_runs, stores.job_runs.releases_due_by(date(2026, 4, 1)))] == ["1001"]
    released = replace(refunded, version=3, status=OrderStatus.RELEASED, release_on=None)
    assert stores.ledger.commit(LedgerChange(order=OrderChange(released))) is Commit.APPLIED
    assert due(stores.job_runs, stores.job_runs.releases_due_by(date(2026, 4, 1))) == []


def test_releases_due_by_a_day_are_every_pending_order_due_then_or_before_however_old(stores: Stores) -> None:
    # Given pending orders due for release from 400 days before a day to 5 days after it, a released one and a
    # cancelled one
    member = enrolled(stores)
    day = date(2027, 6, 15)
    offsets = [-400, -90, -40, -7, -1, 0, 1, 5, *range(-30, -18)]  # more orders than a page
    for number, offset in enumerate(offsets):
        stores.ledger.commit(LedgerChange(order=OrderChange(pending(member, f"o{number:02d}", day, offset))))
    for number, status in ((90, OrderStatus.RELEASED), (91, OrderStatus.CANCELLED)):
        state = replace(pending(member, f"o{number}", day, -50), status=status, release_on=None)
        stores.ledger.commit(LedgerChange(order=OrderChange(state)))
    expected = sorted(f"o{number:02d}" for number, offset in enumerate(offsets) if offset <= 0)
    # When the orders due by the day are read, a few at a time as the job reads them
    found = due(stores.job_runs, stores.job_runs.releases_due_by(day), page_size=3)
    # Then every pending order due that day or before is there once, the oldest too, and no other
    assert sorted(work.order_id for work in found) == expected
    assert {(work.kind, work.member_id, work.shop) for work in found} == {("order", member.member_id, "shopify:shop")}


def pending(member: MemberState, order_id: str, day: date, offset: int) -> OrderState:
    """A pending order of 10 points whose release day is ``offset`` days from ``day``."""
    release_on = day + timedelta(days=offset)
    return OrderState(
        order_key=f"shopify:shop#{order_id}",
        version=1,
        member_id=member.member_id,
        status=OrderStatus.PENDING,
        earned=10,
        left=10,
        earned_on=release_on - timedelta(days=30),
        release_on=release_on,
        lines={"1": LineState(1, 1, 10, 10)},
    )


def test_an_orders_line_values_and_currency_read_back_exactly(stores: Stores) -> None:
    member = enrolled(stores)
    order = replace(
        pending(member, "v1", date(2026, 4, 1), 0),
        currency="SEK",
        lines={"1": LineState(3, 2, 30, 20, Decimal("299.70"), Decimal("199.80")), "2": LineState(1, 1, 0, 0)},
    )
    assert stores.ledger.commit(LedgerChange(order=OrderChange(order))) is Commit.APPLIED
    assert stores.ledger.order(order.order_key) == order


def test_a_refund_kept_before_its_order_reads_back(stores: Stores) -> None:
    parked = OrderState(order_key="woocommerce:shop#7", version=1, parked={"r1": {"2": 1}, "status:refunded": {}})
    assert stores.ledger.commit(LedgerChange(order=OrderChange(parked))) is Commit.APPLIED
    assert stores.ledger.order("woocommerce:shop#7") == parked
    read = stores.ledger.member_and_order("nobody", "woocommerce:shop#7", "woocommerce:shop")
    assert (read.member, read.order) == (None, parked)


def test_an_entry_reads_back_with_every_field(stores: Stores) -> None:
    member = enrolled(stores)
    full = Entry(
        member_id=member.member_id,
        source_key="accrual#shopify:shop#1001",
        kind=EntryKind.ACCRUAL,
        created_at=datetime(2026, 3, 2, 10, 15, 30, 123456, tzinfo=UTC),
        points=0,
        pending=125,
        lifetime=125,
        qualifying=125,
        reason="Order 1001 (shopify:shop): 125 points pending until 2026-04-01, tier bronze",
        source="shopify:shop",
        order_key="shopify:shop#1001",
        actor="005xx",
        campaigns=("spring", "weekend"),
        lines={"1": 100, "2": 25},
        unrecovered=3,
        month="2026-03",
        tier="bronze",
        tier_reached="silver",
        tier_period_end=date(2027, 3, 2),
        valid_until=date(2026, 12, 31),
        placed_on=date(2026, 3, 1),
        base_points=125,
        value=Decimal("1249.95"),
        currency="SEK",
        discounted=True,
        categories=("outdoor", "shoes"),
        offers=("DOUBLE1",),
    )
    assert stores.ledger.commit(LedgerChange(entry=full)) is Commit.APPLIED
    assert stores.ledger.entry(member.member_id, full.source_key) == full
    assert stores.ledger.member_and_entry(member.member_id, full.source_key) == (member, full)


def test_open_lots_are_in_stream_order_and_only_what_is_not_consumed(stores: Stores) -> None:
    member = enrolled(stores)
    for number, (points, start) in enumerate([(10, 0), (20, 10), (30, 30)]):
        change = credit(member.member_id, f"bonus#review#{number}", points, start, date(2027, 3 + number, 28))
        assert stores.ledger.commit(change) is Commit.APPLIED
    # When 15 points have been consumed from the front of the stream
    lots = list(stores.ledger.open_lots(member.member_id, consumed=15))
    # Then the first lot is closed and the others are open, oldest first
    assert [(lot.source_key, lot.lot_start, lot.lot_end) for lot in lots] == [
        ("bonus#review#1", 10, 30),
        ("bonus#review#2", 30, 60),
    ]
    # And each lot is found by the expiry job the day after its last valid day
    expiring = due(stores.job_runs, stores.job_runs.lots_expiring_after(date(2027, 4, 28)))
    assert [(w.member_id, w.lot) for w in expiring] == [(member.member_id, lots[0])]


def test_history_is_newest_first_in_pages_and_entries_oldest_first(stores: Stores) -> None:
    member = enrolled(stores)
    written = []
    for number in range(5):
        made = entry(member.member_id, f"bonus#review#{number}", NOW + timedelta(minutes=number))
        assert stores.ledger.commit(LedgerChange(entry=made)) is Commit.APPLIED
        written.append(made)
    pages, cursor = [], None
    while True:
        page = stores.ledger.history(member.member_id, 2, cursor)
        pages.append([e.source_key for e in page.entries])
        cursor = page.cursor
        if cursor is None:
            break
    assert [key for page in pages for key in page] == [e.source_key for e in reversed(written)]
    assert all(len(page) <= 2 for page in pages)
    assert stores.ledger.entries(member.member_id) == written
    assert stores.ledger.entries(member.member_id, since=NOW + timedelta(minutes=3)) == written[3:]


def test_a_full_page_of_history_may_be_followed_by_an_empty_one(stores: Stores) -> None:
    member = enrolled(stores)
    for number in range(2):
        made = entry(member.member_id, f"bonus#review#{number}", NOW + timedelta(minutes=number))
        assert stores.ledger.commit(LedgerChange(entry=made)) is Commit.APPLIED
    first = stores.ledger.history(member.member_id, 2, None)
    assert len(first.entries) == 2 and first.cursor is not None  # the store cannot tell whether more follow
    last = stores.ledger.history(member.member_id, 2, first.cursor)
    assert (last.entries, last.cursor) == ((), None)


def test_an_offer_for_a_member_who_is_not_there_is_refused(stores: Stores) -> None:
    grant = OfferGrant("DOUBLE", date(2026, 3, 1), date(2026, 3, 31), multiplier=Decimal("2"))
    with pytest.raises(UnknownMemberError):
        stores.ledger.grant_offer("nobody", "DOUBLE#1", grant, [])
    assert stores.ledger.member("nobody") is None


def test_erasure_removes_personal_data_and_the_email_guard(stores: Stores) -> None:
    member = enrolled(stores, "erase.me@example.com", first_name="Erik", last_name="Berg", phone="+46701234567")
    assert stores.ledger.commit(credit(member.member_id, "bonus#signup#1", 10, 0, date(2027, 3, 31))) is Commit.APPLIED
    stores.ledger.park_email(member.member_id, "erik.other@example.com", "the address is member m9's")
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    assert stores.ledger.erase_personal_data(member.member_id, at)
    assert stores.ledger.erase_personal_data(member.member_id, at + timedelta(days=1))  # again: still erased then
    stored = stores.ledger.member(member.member_id)
    assert stored is not None
    assert (stored.email, stored.first_name, stored.last_name, stored.phone, stored.birthdate) == (None,) * 5
    assert (stored.email_parked, stored.email_parked_reason, stored.erased_at) == (None, None, at)
    assert stored.available == 10
    assert stores.ledger.member_for_email("erase.me@example.com") is None
    assert not stores.ledger.erase_personal_data("nobody", at)


def test_a_member_keeps_where_they_joined_and_their_terms_and_a_block(stores: Stores) -> None:
    member = enrolled(stores, "joined@example.com", joined_via="shopify:nordic.myshopify.com", terms_version="2026-01")
    assert stores.ledger.set_block(member.member_id, "Unusual refunds", "salesforce-user:005", NOW)
    stored = stores.ledger.member(member.member_id)
    assert stored is not None
    assert (stored.joined_via, stored.terms_version) == ("shopify:nordic.myshopify.com", "2026-01")
    assert (stored.blocked_reason, stored.blocked_by, stored.blocked_at) == (
        "Unusual refunds",
        "salesforce-user:005",
        NOW,
    )
    assert stored.qualifying_version == member.qualifying_version + 1  # a decision read before it is made again
    assert stores.ledger.set_block(member.member_id, None, "salesforce-user:005", NOW)
    lifted = stores.ledger.member(member.member_id)
    assert lifted is not None and lifted.blocked_reason is None
    assert not stores.ledger.set_block("nobody", "x", "salesforce-user:005", NOW)


def test_a_new_email_moves_the_members_guard_and_one_another_member_holds_is_refused(stores: Stores) -> None:
    anna = enrolled(stores, "anna@example.com")
    bo = enrolled(stores, "bo@example.com")
    later = NOW + timedelta(hours=1)
    # A new address: the member and the guard move together
    assert stores.ledger.change_email(anna.member_id, "anna@example.com", "anna.new@example.com", later) is (
        EmailMove.CHANGED
    )
    assert stores.ledger.member_for_email("anna.new@example.com") == anna.member_id
    assert stores.ledger.member_for_email("anna@example.com") is None
    # A change of case keeps the guard
    assert stores.ledger.change_email(anna.member_id, "anna.new@example.com", "Anna.New@example.com", later) is (
        EmailMove.CHANGED
    )
    stored = stores.ledger.member(anna.member_id)
    assert stored is not None and stored.email == "Anna.New@example.com"
    assert stores.ledger.member_for_email("anna.new@example.com") == anna.member_id
    # Another member's address is refused, nothing written; so is a change from what is no longer there, or older
    assert stores.ledger.change_email(anna.member_id, "Anna.New@example.com", "BO@example.com", later) is (
        EmailMove.TAKEN
    )
    assert stores.ledger.change_email(anna.member_id, "anna@example.com", "x@example.com", later) is EmailMove.OLDER
    assert stores.ledger.change_email(anna.member_id, "Anna.New@example.com", "x@example.com", NOW) is EmailMove.OLDER
    assert stores.ledger.member_for_email("bo@example.com") == bo.member_id
    assert stores.ledger.member_for_email("x@example.com") is None
    # A parked address is kept with its reason until dropped (or the member's e-mail changes)
    stores.ledger.park_email(anna.member_id, "bo@example.com", "the address is member m2's")
    parked = stores.ledger.member(anna.member_id)
    assert parked is not None and (parked.email_parked, parked.email_parked_reason) == (
        "bo@example.com", "the address is member m2's"
    )  # fmt: skip
    assert stores.ledger.change_email(anna.member_id, "Anna.New@example.com", "anna3@example.com", later) is (
        EmailMove.CHANGED
    )
    changed = stores.ledger.member(anna.member_id)
    assert changed is not None and (changed.email_parked, changed.email_parked_reason) == (None, None)


def test_offers_are_granted_dropped_and_used(stores: Stores) -> None:
    member = enrolled(stores)
    old = OfferGrant("OLD", date(2025, 1, 1), date(2025, 1, 31), bonus_points=50)
    double = OfferGrant("DOUBLE", date(2026, 3, 1), date(2026, 3, 31), multiplier=Decimal("2"))
    bonus = OfferGrant("BONUS", date(2026, 3, 1), date(2026, 3, 31), bonus_points=100)
    stores.ledger.grant_offer(member.member_id, "OLD#1", old, [])
    stores.ledger.grant_offer(member.member_id, "DOUBLE#1", double, ["OLD#1"])
    stores.ledger.grant_offer(member.member_id, "BONUS#1", bonus, [])
    used = MemberChange(member.member_id, offers_used={"BONUS#1": "shopify:shop#1001"})
    assert stores.ledger.commit(LedgerChange(entry=entry(member.member_id, "accrual#x"), member=used)) is Commit.APPLIED
    stored = stores.ledger.member(member.member_id)
    assert stored is not None
    assert stored.offers == {"DOUBLE#1": double, "BONUS#1": replace(bonus, used="shopify:shop#1001")}


def test_an_accruals_read_brings_the_member_the_order_the_next_review_and_the_products_categories(
    stores: Stores,
) -> None:
    # Given a member (reviewed on 3 March), a stored order and two products of the shop's catalogue
    member = enrolled(stores)
    order = OrderState(order_key="shopify:shop#2001", version=1, parked={"r1": {}})
    assert stores.ledger.commit(LedgerChange(order=OrderChange(order))) is Commit.APPLIED
    assert stores.directory.save_product("shopify:shop", "10", "Shoe", ("shoes", "outdoor"), NOW)
    assert stores.directory.save_product("shopify:shop", "11", "Sock", (), NOW)
    assert stores.directory.save_product("shopify:other", "12", "Belt", ("accessories",), NOW)
    # When the accrual's state is read for products of the shop, one of them unknown and one another shop's
    read = stores.ledger.member_and_order(
        member.member_id, "shopify:shop#2001", "shopify:shop", ["10", "11", "12", "10"]
    )
    # Then it has the member, the order, the member's next review and the shop's known products' categories
    assert read == MemberAndOrder(member, order, date(2026, 3, 3), {"10": ("shoes", "outdoor"), "11": ()})
    # And without products, or for no one and no order, there is nothing more than there is
    assert stores.ledger.member_and_order(member.member_id, "shopify:shop#2002", "shopify:shop") == MemberAndOrder(
        member, None, date(2026, 3, 3), {}
    )
    assert stores.ledger.member_and_order("nobody", "shopify:shop#2002", "shopify:shop", ["99"]) == MemberAndOrder(
        None, None, None, {}
    )


def test_a_commit_brings_the_members_review_forward_with_its_change_or_writes_nothing(stores: Stores) -> None:
    # Given a member whose next review is on 20 March
    member = MemberState(member_id=f"m{next(_numbers)}", enrolled_at=NOW, last_activity=NOW)
    assert stores.ledger.enrol(member, date(2026, 3, 20)) is Commit.APPLIED
    m = member.member_id

    def review_on() -> date | None:
        return stores.ledger.member_and_order(m, "shopify:shop#0", "shopify:shop").review_on

    def reviewed_by(day: date) -> bool:
        return m in {work.member_id for work in due(stores.job_runs, stores.job_runs.reviews_due_by(day))}

    # When a change is committed that brings the review forward to 5 March
    first = credit(m, "bonus#review#1", 10, 0, date(2027, 3, 31))
    assert stores.ledger.commit(replace(first, review_on=date(2026, 3, 5))) is Commit.APPLIED
    # Then the change and the review are written together: the member is due on 5 March, not before
    assert stores.ledger.member(m).available == 10  # type: ignore[union-attr]
    assert review_on() == date(2026, 3, 5)
    assert reviewed_by(date(2026, 3, 5)) and not reviewed_by(date(2026, 3, 4))
    # When a change would bring it "forward" to the same day or a later one (another writer got there first)
    for later in (date(2026, 3, 5), date(2026, 3, 6)):
        second = credit(m, "bonus#review#2", 5, 10, date(2027, 3, 31))
        assert stores.ledger.commit(replace(second, review_on=later)) is Commit.CONFLICT
    # Then nothing of it is written, and the review stays as it was
    assert stores.ledger.entry(m, "bonus#review#2") is None
    assert stores.ledger.member(m).available == 10  # type: ignore[union-attr]
    assert review_on() == date(2026, 3, 5)
    # And a change applied before is "already applied", whatever its review
    assert stores.ledger.commit(replace(first, review_on=date(2026, 3, 4))) is Commit.ALREADY_APPLIED
    assert review_on() == date(2026, 3, 5)
    assert reviewed_by(date(2026, 3, 5)) and not reviewed_by(date(2026, 3, 4))


# ---------------------------------------------------------------- redemptions


def code_of(member_id: str, redemption_id: str) -> str:
    return f"LOY-{member_id}-{redemption_id}".upper()


def _redemption(member_id: str, redemption_id: str, status: RedemptionStatus, at: datetime = NOW) -> Redemption:
    return Redemption(
        redemption_id=redemption_id,
        member_id=member_id,
        reward_id="50-off",
        kind="amount_off",
        shop="shopify:demo-shop.myshopify.com",
        points=500,
        status=status,
        created_at=at,
        updated_at=at,
        request_hash="h1",
        code=code_of(member_id, redemption_id),
        valid_until=date(2026, 4, 1),
    )


def _spend(member_id: str, redemption_id: str, uses_version: int) -> LedgerChange:
    spent = entry(member_id, f"redemption#{redemption_id}", points=-500)
    change = MemberChange(
        member_id,
        add={"available": -500, "consumed": 500, "redeemed": 500},
        expect=MemberExpectations(available_at_least=500),
    )
    uses = RewardUses("50-off", {"2026-03": uses_version}, uses_version, uses_version)
    write = RedemptionWrite(_redemption(member_id, redemption_id, RedemptionStatus.PENDING), None, uses)
    return LedgerChange(entry=spent, member=change, redemption=write)


def test_a_redemption_is_written_with_its_entry_and_uses_and_read_in_one_go(stores: Stores) -> None:
    member = enrolled(stores)
    assert stores.ledger.commit(credit(member.member_id, "lot-1", 1200, 0, date(2027, 3, 31))) is Commit.APPLIED
    empty = stores.ledger.redemption_state(member.member_id, "rdm_1", "50-off")
    assert (empty.redemption, empty.uses) == (None, RewardUses("50-off"))
    assert stores.ledger.commit(_spend(member.member_id, "rdm_1", 1)) is Commit.APPLIED
    state = stores.ledger.redemption_state(member.member_id, "rdm_1", "50-off")
    assert state.redemption == _redemption(member.member_id, "rdm_1", RedemptionStatus.PENDING)
    assert state.uses == RewardUses("50-off", {"2026-03": 1}, 1, 1)
    assert state.member is not None and state.member.available == 700
    # Another id with uses at the version read: applied; with stale uses: a conflict, nothing written
    assert stores.ledger.commit(_spend(member.member_id, "rdm_2", 1)) is Commit.CONFLICT
    assert stores.ledger.commit(_spend(member.member_id, "rdm_2", 2)) is Commit.APPLIED
    assert stores.ledger.member(member.member_id).available == 200  # type: ignore[union-attr]
    # The same id again: its entry exists, already applied
    assert stores.ledger.commit(_spend(member.member_id, "rdm_1", 3)) is Commit.ALREADY_APPLIED
    found, uses = stores.ledger.member_and_uses(member.member_id, ["50-off", "tote-bag"])
    assert found is not None and [u.reward_id for u in uses] == ["50-off"]
    assert [r.redemption_id for r in stores.ledger.redemptions(member.member_id)] == ["rdm_2", "rdm_1"]


def test_a_redemption_changes_status_only_from_the_status_read(stores: Stores) -> None:
    member = enrolled(stores)
    stores.ledger.commit(credit(member.member_id, "lot-1", 600, 0, date(2027, 3, 31)))
    stores.ledger.commit(_spend(member.member_id, "rdm_1", 1))
    later = NOW + timedelta(hours=1)
    cancelled = replace(_redemption(member.member_id, "rdm_1", RedemptionStatus.CANCELLED), updated_at=later)
    wrong = LedgerChange(redemption=RedemptionWrite(cancelled, RedemptionStatus.ACTIVE))
    assert stores.ledger.commit(wrong) is Commit.CONFLICT
    right = LedgerChange(redemption=RedemptionWrite(cancelled, RedemptionStatus.PENDING))
    assert stores.ledger.commit(right) is Commit.APPLIED
    assert stores.ledger.redemptions(member.member_id) == [cancelled]
    assert stores.ledger.redemptions("nobody") == []


def test_a_redemptions_task_is_noted_and_kept_through_later_writes(stores: Stores) -> None:
    member = enrolled(stores)
    stores.ledger.commit(credit(member.member_id, "lot-1", 600, 0, date(2027, 3, 31)))
    spend = _spend(member.member_id, "rdm_1", 1)
    assert spend.redemption is not None
    asked = replace(spend.redemption.redemption, task_state="pending")
    stores.ledger.commit(replace(spend, redemption=replace(spend.redemption, redemption=asked)))
    assert stores.ledger.redemptions(member.member_id)[0].task_state == "pending"
    stores.ledger.mark_redemption_task(member.member_id, "rdm_1", "pushed")
    assert stores.ledger.redemptions(member.member_id)[0].task_state == "pushed"
    stores.ledger.mark_redemption_task(member.member_id, "rdm_gone", "pushed")  # nothing to note: nothing written
    assert [r.redemption_id for r in stores.ledger.redemptions(member.member_id)] == ["rdm_1"]


def test_an_orders_read_finds_the_redemptions_of_its_codes(stores: Stores) -> None:
    member = enrolled(stores)
    stores.ledger.commit(credit(member.member_id, "lot-1", 600, 0, date(2027, 3, 31)))
    stores.ledger.commit(_spend(member.member_id, "rdm_1", 1))
    shop = "shopify:demo-shop.myshopify.com"
    code = code_of(member.member_id, "rdm_1")
    found = stores.ledger.member_and_order(member.member_id, f"{shop}#1", shop, (), [code.lower(), "LOY-NONE-SEEN"])
    assert found.redemptions == {code: (member.member_id, "rdm_1")}
    other = stores.ledger.member_and_order(member.member_id, "other#1", "shopify:other.myshopify.com", (), [code])
    assert other.redemptions == {}
    # A second redemption with a code another holds is not written (codes are random: it would be made again)
    clash = _spend(member.member_id, "rdm_2", 2)
    assert clash.redemption is not None
    taken = replace(clash.redemption.redemption, code=code)
    assert (
        stores.ledger.commit(replace(clash, redemption=replace(clash.redemption, redemption=taken))) is Commit.CONFLICT
    )
    assert stores.ledger.member(member.member_id).available == 100  # type: ignore[union-attr]


def test_an_unused_code_is_due_on_the_day_it_ends_and_a_used_one_is_not(stores: Stores) -> None:
    member = enrolled(stores)
    stores.ledger.commit(credit(member.member_id, "lot-1", 600, 0, date(2027, 3, 31)))
    stores.ledger.commit(_spend(member.member_id, "rdm_1", 1))  # valid until 2026-04-01
    ending = due(stores.job_runs, stores.job_runs.codes_ending(date(2026, 4, 2)))
    mine = [work for work in ending if work.member_id == member.member_id]
    assert [(work.kind, work.redemption_id) for work in mine] == [("redemption", "rdm_1")]
    assert not [
        w
        for w in due(stores.job_runs, stores.job_runs.codes_ending(date(2026, 4, 1)))
        if w.member_id == member.member_id
    ]
    used = replace(_redemption(member.member_id, "rdm_1", RedemptionStatus.USED), order_key="shop#1")
    assert (
        stores.ledger.commit(LedgerChange(redemption=RedemptionWrite(used, RedemptionStatus.PENDING))) is Commit.APPLIED
    )
    ending = due(stores.job_runs, stores.job_runs.codes_ending(date(2026, 4, 2)))
    assert [work for work in ending if work.member_id == member.member_id] == []
