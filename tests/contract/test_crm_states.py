"""The CRM state's contract: what was last pushed per member, who is parked, unlinked or stale, and asking for a
member's push again."""

from __future__ import annotations

from datetime import UTC, datetime

from loyalty.ports.crm import CrmState
from tests.contract.conftest import Stores

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_states_read_back_and_list_who_is_not_in_sync(stores: Stores) -> None:
    states = stores.crm_states
    states.save(
        {
            "m1": CrmState(pushed={"Loyalty_Points__c": 10, "Loyalty_Tier__c": "Silver"}),
            "m2": CrmState(status="unlinked", reason="no Contact with the member's e-mail yet"),
            "m3": CrmState(status="parked", reason="2 Contacts share the member's e-mail"),
        },
        T0,
    )
    found = states.states(["m1", "m2", "m4"])
    assert found == {
        "m1": CrmState(pushed={"Loyalty_Points__c": 10, "Loyalty_Tier__c": "Silver"}),
        "m2": CrmState(status="unlinked", reason="no Contact with the member's e-mail yet"),
    }
    assert states.not_in_sync("unlinked") == [("m2", "no Contact with the member's e-mail yet")]
    assert states.not_in_sync("parked") == [("m3", "2 Contacts share the member's e-mail")]
    assert states.not_in_sync("synced") == []  # only those not in sync are listed
    # When a member is synced again, it leaves the list
    states.save({"m2": CrmState(pushed={"Loyalty_Points__c": 0})}, T0)
    assert states.not_in_sync("unlinked") == []


def test_many_states_are_saved_at_once(stores: Stores) -> None:
    # More than one batch of writes: every state is stored
    many = {f"m{n:03d}": CrmState(pushed={"Loyalty_Points__c": n}) for n in range(60)}
    stores.crm_states.save(many, T0)
    assert stores.crm_states.states(many) == many


def test_asking_for_a_push_again_keeps_the_state_and_skips_members_never_pushed(stores: Stores) -> None:
    # Given a member whose push did not reach Salesforce, and one in sync
    stale = CrmState(pushed={"Loyalty_Points__c": 10}, status="stale", reason="the push did not reach Salesforce")
    states = stores.crm_states
    states.save({"m1": stale, "m2": CrmState(pushed={"Loyalty_Points__c": 5})}, T0)
    assert states.not_in_sync("stale") == [("m1", "the push did not reach Salesforce")]
    # When their push is asked for again, with a member that has no state at all
    states.request_push(["m1", "m2", "m9"], T0)
    # Then their states are as they were (the request only marks them), and no state appears for the third
    assert states.states(["m1", "m2", "m9"]) == {"m1": stale, "m2": CrmState(pushed={"Loyalty_Points__c": 5})}
    assert states.not_in_sync("stale") == [("m1", "the push did not reach Salesforce")]
