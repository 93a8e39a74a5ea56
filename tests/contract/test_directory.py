"""The directory's contract: customers, profiles and consent in time order, the catalogue, held guest orders,
CRM requests; on the fake and on DynamoDB Local."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from loyalty.errors import UnknownMemberError
from loyalty.ledger.state import Commit, MemberState
from tests.contract.conftest import Stores, due
from tests.orders import simple_order

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def member(stores: Stores, member_id: str = "m1", **profile: object) -> str:
    state = MemberState(member_id=member_id, enrolled_at=T0, email=f"{member_id}@example.com", **profile)  # type: ignore[arg-type]
    assert stores.ledger.enrol(state, date(2026, 5, 2)) is Commit.APPLIED
    return member_id


def test_customers_are_linked_to_members_per_shop(stores: Stores) -> None:
    stores.directory.link_customer("shopify:a", "501", "m1")
    assert stores.directory.member_for_customer("shopify:a", "501") == "m1"
    assert stores.directory.member_for_customer("shopify:b", "501") is None


def test_profile_changes_apply_in_time_order(stores: Stores) -> None:
    m = member(stores)
    # When a newer change arrives before an older one
    assert stores.directory.update_profile(m, {"locale": "sv-SE", "phone": "+46701234567"}, T0 + timedelta(hours=2))
    assert not stores.directory.update_profile(m, {"locale": "en-GB"}, T0 + timedelta(hours=1))
    # Then the newer one stands, with its time
    state = stores.ledger.member(m)
    assert state is not None
    assert (state.locale, state.phone, state.profile_updated_at) == ("sv-SE", "+46701234567", T0 + timedelta(hours=2))
    # And a change for no member applies nothing
    assert not stores.directory.update_profile("nobody", {"locale": "sv-SE"}, T0)


def test_each_consent_flag_keeps_its_own_time(stores: Stores) -> None:
    m = member(stores)
    # Given e-mail consent stated at T0 + 2h
    assert stores.directory.set_consent(m, "email_consent", True, T0 + timedelta(hours=2))
    # When an older SMS opt-out and an older e-mail opt-out arrive
    assert stores.directory.set_consent(m, "sms_consent", False, T0 + timedelta(hours=1))
    assert not stores.directory.set_consent(m, "email_consent", False, T0 + timedelta(hours=1))
    # Then the SMS opt-out applies (that flag had no time), the e-mail one does not
    state = stores.ledger.member(m)
    assert state is not None
    assert (state.email_consent, state.email_consent_at) == (True, T0 + timedelta(hours=2))
    assert (state.sms_consent, state.sms_consent_at) == (False, T0 + timedelta(hours=1))
    # And consent is independent of the profile's time
    assert stores.directory.update_profile(m, {"phone": "+4670"}, T0 + timedelta(hours=3))
    assert stores.directory.set_consent(m, "sms_consent", True, T0 + timedelta(hours=1, minutes=1))
    assert not stores.directory.set_consent("nobody", "sms_consent", True, T0)


def test_a_new_birthday_goes_on_the_birthday_index_from_the_day_it_was_entered(stores: Stores) -> None:
    m = member(stores)
    assert stores.directory.update_profile(m, {"birthdate": "1990-06-15"}, T0)
    state = stores.ledger.member(m)
    assert state is not None and state.birthdate == date(1990, 6, 15)
    found = due(stores.job_runs, stores.job_runs.birthdays(6, 15))
    assert [(w.kind, w.member_id, w.entered_on) for w in found] == [("birthday", m, T0.date())]
    # And a changed birthday moves to its new day
    assert stores.directory.update_profile(m, {"birthdate": "1990-06-16"}, T0 + timedelta(days=3))
    assert due(stores.job_runs, stores.job_runs.birthdays(6, 15)) == []
    assert [w.entered_on for w in due(stores.job_runs, stores.job_runs.birthdays(6, 16))] == [date(2026, 5, 4)]


def test_contacts_are_linked_and_unlinked(stores: Stores) -> None:
    m = member(stores)
    stores.directory.link_contact(m, "003000000000001AAA")
    assert (stores.ledger.member(m) or pytest.fail()).crm_contact_id == "003000000000001AAA"
    stores.directory.link_contact(m, None)
    assert (stores.ledger.member(m) or pytest.fail()).crm_contact_id is None
    with pytest.raises(UnknownMemberError):
        stores.directory.link_contact("nobody", "003000000000001AAA")


def test_a_crm_request_is_noted_once(stores: Stores) -> None:
    assert stores.directory.record_request("req-1")
    assert not stores.directory.record_request("req-1")
    assert stores.directory.record_request("req-2")


def test_an_older_product_update_does_not_overwrite_a_newer_one(stores: Stores) -> None:
    assert stores.directory.save_product("shopify:s", "1", "Shoe", ("shoes",), T0)
    assert not stores.directory.save_product("shopify:s", "1", "Shoe", ("sale",), T0 - timedelta(hours=1))
    assert stores.directory.save_product("shopify:s", "2", "Sock", ("socks", "wool"), T0)
    assert stores.directory.categories_for("shopify:s", ["1", "2", "3"]) == {"1": ("shoes",), "2": ("socks", "wool")}
    assert stores.directory.categories_for("shopify:other", ["1"]) == {}


def test_guest_orders_are_held_until_their_hold_ends(stores: Stores) -> None:
    order = simple_order("g1", T0)
    stores.directory.hold_guest_order("Guest@Example.com", order, until=T0 + timedelta(days=30))
    assert stores.directory.held_orders("guest@example.com", T0 + timedelta(days=29)) == [order]
    assert stores.directory.held_orders("guest@example.com", T0 + timedelta(days=31)) == []
    stores.directory.drop_held_order("guest@example.com", order)
    assert stores.directory.held_orders("guest@example.com", T0) == []


def test_orders_held_for_review_are_kept_once_and_listed_oldest_first(stores: Stores) -> None:
    # Given two orders beyond the bounds, the second delivered twice
    big = simple_order("b1", T0, [("1", 10**18, "1.00")])
    old = simple_order("o1", T0 - timedelta(days=4000), shop="woocommerce:shop.example.com")
    stores.directory.hold_for_review(big, "a line of 1000000000000000000 units (at most 1000)", T0, "m1")
    stores.directory.hold_for_review(old, "placed more than 3650 days ago", T0 + timedelta(minutes=1))
    stores.directory.hold_for_review(old, "placed more than 3650 days ago", T0 + timedelta(minutes=5))
    # Then each is kept once, as it was first held, with its reason
    held = stores.directory.held_for_review()
    assert [(h.order, h.reason, h.held_at, h.member_id) for h in held] == [
        (big, "a line of 1000000000000000000 units (at most 1000)", T0, "m1"),
        (old, "placed more than 3650 days ago", T0 + timedelta(minutes=1), None),
    ]
    # And noting its Task changes none of that
    stores.directory.mark_review_task(held[0], "pushed")
    assert stores.directory.held_for_review() == held


def test_a_shops_customers_are_listed_and_a_persons_links_and_held_orders_forgotten(stores: Stores) -> None:
    anna, bo = member(stores, "m-anna"), member(stores, "m-bo")
    stores.directory.link_customer("shopify:a", "1", anna)
    stores.directory.link_customer("shopify:b", "7", anna)
    stores.directory.link_customer("shopify:a", "2", bo)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    stores.directory.hold_guest_order("m-anna@example.com", simple_order("g1", at), at + timedelta(days=30))
    # A shop's customers, and a member's links
    assert stores.directory.shop_customers("shopify:a") == [("1", anna), ("2", bo)]
    assert stores.directory.customer_links(anna) == ["shopify:a#1", "shopify:b#7"]
    # One link dropped, only if it is the member's
    stores.directory.unlink_customer("shopify:a", "2", anna)
    assert stores.directory.member_for_customer("shopify:a", "2") == bo
    stores.directory.unlink_customer("shopify:a", "2", bo)
    assert stores.directory.member_for_customer("shopify:a", "2") is None
    assert stores.directory.customer_links(bo) == []
    # A person forgotten: every link and the guest orders held for their e-mail
    assert stores.directory.forget_person(anna, "m-anna@example.com") == 3
    assert stores.directory.shop_customers("shopify:a") == [] and stores.directory.customer_links(anna) == []
    assert stores.directory.held_orders("m-anna@example.com", at) == []
    # And a CRM request id, once noted, is known
    assert not stores.directory.request_seen("req-1")
    assert stores.directory.record_request("req-1") and stores.directory.request_seen("req-1")
