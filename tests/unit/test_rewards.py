"""The rewards catalogue and redeeming from it: the rules a member must meet, one redemption per Idempotency-Key,
nothing written for a refusal, and unused redemptions cancelled with their points back."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from loyalty.crm.sync import CrmSync
from loyalty.errors import (
    IdempotencyKeyReusedError,
    InvalidAmountError,
    MalformedPayloadError,
    ProgramConfigError,
    RedemptionRefusedError,
    UnknownMemberError,
    UnknownRewardError,
)
from loyalty.fakes import Fakes
from loyalty.fakes.shops import InMemoryShopCodes
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.ports.crm import RewardToArrange
from loyalty.programme.rewards import REPO_REWARDS_FILE, RewardCatalogue, load_rewards
from loyalty.programme.rules import ProgramRules
from loyalty.rewards.member_api import MemberRewards, new_code, redemption_id_for
from tests.conftest import FakeClock

SHOP = "shopify:demo-shop.myshopify.com"


@pytest.fixture(scope="module")
def catalogue(rules: ProgramRules) -> RewardCatalogue:
    return load_rewards(rules)


@pytest.fixture
def rewards(ledger: Ledger, catalogue: RewardCatalogue) -> MemberRewards:
    return MemberRewards(ledger, catalogue, InMemoryShopCodes())


def member_with(ledger: Ledger, points: int, member_id: str = "m-1") -> str:
    ledger.enrol(member_id)
    if points:
        ledger.adjust(member_id, points, "agent-1", "opening balance", f"open-{member_id}")
    return member_id


def redeem(rewards: MemberRewards, member_id: str, reward_id: str, key: str, shop: str | None = SHOP) -> dict[str, Any]:
    body: dict[str, Any] = {"rewardId": reward_id} | ({"shop": shop} if shop is not None else {})
    answer, _ = rewards.redeem(member_id, body, key)
    return answer


# ---------------------------------------------------------------- the catalogue


def test_the_catalogue_in_the_repository_is_valid(catalogue: RewardCatalogue) -> None:
    kinds = {reward.kind.value for reward in catalogue.rewards}
    assert kinds == {"amount_off", "percent_off", "free_shipping", "free_product", "donation", "experience"}
    assert catalogue.money(500)["SEK"] == 50
    assert catalogue.shop("demo-shop.myshopify.com") == SHOP
    assert catalogue.shop("unknown.myshopify.com") is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("cost: 500", "cost: -5"), "rewards[0].cost"),
        (("    amount: {SEK: 50, NOK: 50, DKK: 35, EUR: 5}\n", ""), "needs `amount`"),
        (("min_tier: silver", "min_tier: diamond"), "rewards[3].min_tier: unknown tier 'diamond'"),
        (("  - id: 10-percent", "  - id: 50-off"), "the id is used twice"),
        (("  SEK: 0.1\n", ""), "point_value has no SEK"),
        (("    cause: Vi-skogen\n", "    cause: Vi-skogen\n    percent: 5\n"), "`percent` is not used by a donation"),
    ],
)
def test_a_wrong_catalogue_names_the_file_and_field(
    tmp_path: Path, rules: ProgramRules, change: tuple[str, str], named: str
) -> None:
    text = REPO_REWARDS_FILE.read_text(encoding="utf-8")
    assert change[0] in text
    bad = tmp_path / "rewards.yaml"
    bad.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ProgramConfigError) as raised:
        load_rewards(rules, bad)
    assert str(bad) in str(raised.value)
    assert named in str(raised.value)


# ---------------------------------------------------------------- redeeming


def test_a_redemption_spends_the_points_once_per_key(rewards: MemberRewards, ledger: Ledger) -> None:
    member = member_with(ledger, 800)
    answer = redeem(rewards, member, "50-off", "key-1")
    assert answer["rewardId"] == "50-off"
    assert answer["pointsSpent"] == 500
    assert answer["status"] == "pending"
    assert answer["code"].startswith("LOY-")
    assert answer["validUntil"] == "2026-04-01"  # 30 days from 2026-03-02
    assert answer["redemptionId"] == redemption_id_for(member, "key-1")
    assert ledger.summary(member).available == 300
    # The same request again: the same answer, nothing spent twice
    again, made = rewards.redeem(member, {"rewardId": "50-off", "shop": SHOP}, "key-1")
    assert (again, made) == (answer, False)
    assert ledger.summary(member).available == 300
    redemptions = [e for e in ledger.entries(member) if e.kind is EntryKind.REDEMPTION]
    assert [(e.points, e.source) for e in redemptions] == [(-500, "50-off")]
    assert ledger.check_invariants(member) == []


def test_the_same_key_for_another_request_is_refused_and_writes_nothing(rewards: MemberRewards, ledger: Ledger) -> None:
    member = member_with(ledger, 2000)
    redeem(rewards, member, "50-off", "key-1")
    with pytest.raises(IdempotencyKeyReusedError):
        redeem(rewards, member, "10-percent", "key-1")
    assert ledger.summary(member).available == 1500
    assert len(ledger.redemptions(member)) == 1


def test_a_key_is_the_members_own(rewards: MemberRewards, ledger: Ledger) -> None:
    first, second = member_with(ledger, 600, "m-1"), member_with(ledger, 600, "m-2")
    assert (
        redeem(rewards, first, "50-off", "same")["redemptionId"]
        != redeem(rewards, second, "50-off", "same")["redemptionId"]
    )
    assert ledger.summary(first).available == ledger.summary(second).available == 100


def test_not_enough_points_names_the_balance_and_shortfall_and_writes_nothing(
    rewards: MemberRewards, ledger: Ledger
) -> None:
    member = member_with(ledger, 420)
    with pytest.raises(RedemptionRefusedError) as refused:
        redeem(rewards, member, "50-off", "key-1")
    assert (refused.value.rule, refused.value.details) == ("points", {"balance": 420, "shortfall": 80})
    assert ledger.summary(member).available == 420
    assert ledger.redemptions(member) == []
    # Refused, the key is still free: with enough points the same key redeems
    ledger.adjust(member, 80, "agent-1", "top up", "top-1")
    assert redeem(rewards, member, "50-off", "key-1")["status"] == "pending"


def test_a_tier_too_low_is_refused_by_name(rewards: MemberRewards, ledger: Ledger, clock: FakeClock) -> None:
    member = member_with(ledger, 5000)
    with pytest.raises(RedemptionRefusedError) as refused:
        redeem(rewards, member, "tote-bag", "key-1")
    assert refused.value.rule == "min_tier"
    assert refused.value.details == {"tier": "bronze", "minTier": "silver"}
    ledger.override_tier(member, "silver", date(2026, 12, 31), "VIP", "agent-1", "o-1")
    assert redeem(rewards, member, "tote-bag", "key-1")["status"] == "pending"


def test_limits_per_month_and_lifetime(rewards: MemberRewards, ledger: Ledger, clock: FakeClock) -> None:
    member = member_with(ledger, 10_000)
    ledger.override_tier(member, "gold", date(2027, 12, 31), "VIP", "agent-1", "o-1")
    redeem(rewards, member, "50-off", "a")
    redeem(rewards, member, "50-off", "b")
    with pytest.raises(RedemptionRefusedError) as refused:
        redeem(rewards, member, "50-off", "c")
    assert refused.value.rule == "per_month"
    clock.advance(days=31)  # a new month
    redeem(rewards, member, "50-off", "c")
    redeem(rewards, member, "tote-bag", "d")
    with pytest.raises(RedemptionRefusedError) as refused:
        redeem(rewards, member, "tote-bag", "e")
    assert refused.value.rule == "lifetime"
    assert ledger.summary(member).available == 10_000 - 3 * 500 - 1500


def test_unknown_reward_shop_or_member_is_not_found(rewards: MemberRewards, ledger: Ledger) -> None:
    member = member_with(ledger, 1000)
    with pytest.raises(UnknownRewardError):
        redeem(rewards, member, "no-such-reward", "k")
    with pytest.raises(UnknownRewardError):
        redeem(rewards, member, "50-off", "k", shop="elsewhere.myshopify.com")
    with pytest.raises(UnknownMemberError):
        redeem(rewards, "nobody", "50-off", "k")
    assert ledger.summary(member).available == 1000


def test_a_shop_is_named_with_or_without_its_platform(rewards: MemberRewards, ledger: Ledger) -> None:
    member = member_with(ledger, 1000)
    assert redeem(rewards, member, "50-off", "k", shop="demo-shop.myshopify.com")["shop"] == SHOP


@pytest.mark.parametrize(
    ("body", "key", "error"),
    [
        ({"rewardId": "50-off", "shop": SHOP}, None, InvalidAmountError),
        ({"rewardId": "50-off", "shop": SHOP}, "  ", InvalidAmountError),
        ({"rewardId": "50-off", "shop": SHOP}, "x" * 256, InvalidAmountError),
        (["50-off"], "k", MalformedPayloadError),
        ({"shop": SHOP}, "k", MalformedPayloadError),
        ({"rewardId": 7, "shop": SHOP}, "k", MalformedPayloadError),
        ({"rewardId": "50-off"}, "k", MalformedPayloadError),  # a code needs its shop
    ],
)
def test_malformed_requests_are_refused(
    rewards: MemberRewards, ledger: Ledger, body: Any, key: str | None, error: type[Exception]
) -> None:
    member = member_with(ledger, 1000)
    with pytest.raises(error):
        rewards.redeem(member, body, key)
    assert ledger.summary(member).available == 1000


def test_a_donation_has_no_code_and_its_entry_is_the_receipt(rewards: MemberRewards, ledger: Ledger) -> None:
    member = member_with(ledger, 300)
    answer = redeem(rewards, member, "plant-a-tree", "k", shop=None)
    assert (answer["status"], answer["code"], answer["validUntil"]) == ("fulfilled", None, None)
    [entry] = [e for e in ledger.entries(member) if e.kind is EntryKind.REDEMPTION]
    assert entry.reason == "Donation to Vi-skogen: Plant a tree"


def test_an_experience_is_an_open_task_on_the_members_contact_once(
    rewards: MemberRewards, ledger: Ledger, fakes: Fakes, clock: FakeClock
) -> None:
    # Given a Gold member with a Contact, and one without, who both redeem the styling session
    with_contact, without = member_with(ledger, 6000, "m-1"), member_with(ledger, 6000, "m-2")
    for member in (with_contact, without):
        ledger.override_tier(member, "gold", date(2026, 12, 31), "VIP", "agent-1", f"vip-{member}")
    contact = fakes.org.add_contact(LastName="Lindqvist", Email="m1@example.com")
    fakes.directory.link_contact(with_contact, contact)
    made = [redeem(rewards, member, "styling-session", "k", shop=None) for member in (with_contact, without)]
    assert [m["status"] for m in made] == ["requested", "requested"]
    to_arrange = [
        RewardToArrange(r.member_id, r.redemption_id, r.reward_id, r.points, r.created_at)
        for member in (with_contact, without)
        for r in ledger.redemptions(member)
        if r.task_state == "pending"
    ]
    assert len(to_arrange) == 2
    # When crm_sync records them (twice: a retry)
    sync = CrmSync(ledger, fakes.org, fakes.crm_states, fakes.directory, fakes.offer_records, clock=clock)
    report = sync.sync(set(), [], [], to_arrange)
    sync.sync(set(), [], [], to_arrange)
    # Then the member with a Contact has one open Task for the person who arranges it; the other is noted
    (task,) = fakes.org.tasks()
    assert task["WhoId"] == contact and task["Status"] == "Not Started"
    assert task["Subject"] == "Loyalty reward to arrange: styling-session" and "5000 points" in task["Description"]
    assert (report.tasks, report.tasks_not_recorded) == (1, 1)
    assert [ledger.redemptions(m)[0].task_state for m in (with_contact, without)] == ["pushed", "no_contact"]


# ---------------------------------------------------------------- what a member can have


def test_the_rewards_a_member_can_have_and_what_the_others_need(rewards: MemberRewards, ledger: Ledger) -> None:
    member = member_with(ledger, 600)
    offer = rewards.offer(member, "sv")
    by_id = {reward["rewardId"]: reward for reward in offer["rewards"]}
    assert offer["available"] == 600
    assert offer["tier"] == "bronze"
    assert (by_id["50-off"]["canRedeem"], by_id["50-off"]["pointsNeeded"]) == (True, 0)
    assert by_id["50-off"]["name"] == "50 kr rabatt"
    assert (by_id["10-percent"]["canRedeem"], by_id["10-percent"]["refusedBy"]) == (False, "points")
    assert by_id["10-percent"]["pointsNeeded"] == 400
    assert by_id["tote-bag"]["refusedBy"] == "min_tier"
    assert offer["pointValue"]["SEK"] == "0.1"


# ---------------------------------------------------------------- cancelling


def test_cancelling_an_unused_code_gives_the_points_back_once(
    rewards: MemberRewards, ledger: Ledger, clock: FakeClock
) -> None:
    member = member_with(ledger, 1200)
    made = redeem(rewards, member, "50-off", "k")
    cancelled = rewards.cancel(member, made["redemptionId"])
    assert cancelled["status"] == "cancelled"
    assert ledger.summary(member).available == 1200
    assert rewards.cancel(member, made["redemptionId"]) == cancelled  # again: nothing more
    assert ledger.summary(member).available == 1200
    [returned] = [e for e in ledger.entries(member) if e.source_key.startswith("redemption-return#")]
    assert returned.points == 500
    lots = [e.expires_on for e in ledger.entries(member) if e.expires_on is not None and e is not returned]
    assert returned.expires_on is not None and returned.expires_on >= max(lots)
    assert ledger.check_invariants(member) == []
    # A cancelled redemption no longer counts toward the monthly limit
    redeem(rewards, member, "50-off", "k2")
    redeem(rewards, member, "50-off", "k3")


def test_a_fulfilled_redemption_cannot_be_cancelled(rewards: MemberRewards, ledger: Ledger) -> None:
    member = member_with(ledger, 300)
    made = redeem(rewards, member, "plant-a-tree", "k", shop=None)
    with pytest.raises(RedemptionRefusedError) as refused:
        rewards.cancel(member, made["redemptionId"])
    assert refused.value.rule == "status"
    with pytest.raises(UnknownRewardError):
        rewards.cancel(member, "rdm_unknown")
    assert ledger.summary(member).available == 100


def test_the_members_redemptions_newest_first(rewards: MemberRewards, ledger: Ledger, clock: FakeClock) -> None:
    member = member_with(ledger, 2000)
    first = redeem(rewards, member, "50-off", "a")
    clock.advance(hours=1)
    second = redeem(rewards, member, "free-shipping", "b")
    listed = rewards.redemptions(member)["redemptions"]
    assert [r["redemptionId"] for r in listed] == [second["redemptionId"], first["redemptionId"]]
    with pytest.raises(UnknownMemberError):
        rewards.redemptions("nobody")


def test_codes_are_unambiguous_and_differ() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(code) == 13 and code[:4] == "LOY-" and not set(code[4:]) & set("01IO") for code in codes)
