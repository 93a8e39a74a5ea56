"""A redemption's code made in its shop: made once however often it is asked, points back when the shop refuses
for good, nothing lost when the maker dies between the shop and the ledger, no code left for a cancelled one."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from loyalty.crm.fields import task_fields
from loyalty.crm.inbound import CrmInbound
from loyalty.errors import IdempotencyKeyReusedError, RedemptionRefusedError, ShopRefusedError, ShopRetryableError
from loyalty.fakes import Fakes
from loyalty.fakes.shops import InMemoryShopCodes
from loyalty.jobs import ScheduledJobs
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import RedemptionStatus
from loyalty.offers.records import SendRecord, Status
from loyalty.offers.rules import load_offer_rules
from loyalty.ports.shops import CodeRequest, ShopCode
from loyalty.programme.rewards import load_rewards
from loyalty.programme.rules import ProgramRules
from loyalty.rewards.codes import CodeMaker
from loyalty.rewards.member_api import MemberRewards
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.webhooks import QueuedWebhook
from tests.conftest import FakeClock

SHOP = "shopify:demo-shop.myshopify.com"


@pytest.fixture
def shops() -> InMemoryShopCodes:
    return InMemoryShopCodes()


@pytest.fixture
def maker(fakes: Fakes, ledger: Ledger, rules: ProgramRules, shops: InMemoryShopCodes) -> CodeMaker:
    return CodeMaker(ledger, load_rewards(rules), shops, fakes.offer_queue, load_offer_rules())


def redeemed(maker: CodeMaker, reward_id: str = "50-off", points: int = 1000) -> dict[str, Any]:
    ledger = maker.ledger
    ledger.enrol("m-1", email="anna@example.com")
    ledger.adjust("m-1", points, "agent-1", "opening balance", "open")
    answer, _ = MemberRewards(ledger, maker.catalogue, maker.shops).redeem(
        "m-1", {"rewardId": reward_id, "shop": SHOP}, "k-1"
    )
    return answer


def test_the_code_is_made_in_the_shop_once(maker: CodeMaker, shops: InMemoryShopCodes) -> None:
    made = redeemed(maker)
    assert maker.make("m-1", made["redemptionId"]) is RedemptionStatus.ACTIVE
    assert maker.make("m-1", made["redemptionId"]) is RedemptionStatus.ACTIVE  # asked again: nothing more
    assert shops.calls == 1
    asked = shops.codes[(SHOP, made["code"])]
    assert (asked.kind, asked.amount, asked.min_subtotal, asked.currency) == ("amount_off", 50, 200, "SEK")
    assert asked.customer_email == "anna@example.com"
    assert asked.ends_at.isoformat() == "2026-04-02T00:00:00+02:00"  # through 1 April, Stockholm time
    redemption = maker.ledger.redemption("m-1", made["redemptionId"])
    assert redemption.apply_url == f"https://demo-shop.myshopify.com/discount/{made['code']}"


def test_the_member_is_mailed_the_code_in_their_language_once(fakes: Fakes, maker: CodeMaker) -> None:
    maker.ledger.enrol("m-1", email="anna@example.com", locale="sv_SE")
    maker.ledger.adjust("m-1", 1000, "agent-1", "opening balance", "open")
    made, _ = MemberRewards(maker.ledger, maker.catalogue).redeem("m-1", {"rewardId": "50-off", "shop": SHOP}, "k")
    maker.make("m-1", made["redemptionId"])
    maker.make("m-1", made["redemptionId"])  # the stream's retry after a crash: asked again, sent once (by id)
    requests = fakes.offer_queue.requests
    assert len({r.request_id for r in requests}) == 1 and len(requests) == 2
    asked = requests[0]
    assert (asked.trigger.value, asked.channels, asked.member_id) == ("reward_redeemed", ("email",), "m-1")
    assert asked.details == {"reward": "50 kr rabatt", "code": made["code"], "expires_on": "2026-04-01"}


def test_a_shop_that_cannot_now_leaves_it_pending_and_a_later_attempt_makes_it(
    maker: CodeMaker, shops: InMemoryShopCodes
) -> None:
    made = redeemed(maker)
    shops.failures.append(ShopRetryableError("THROTTLED"))
    with pytest.raises(ShopRetryableError):
        maker.make("m-1", made["redemptionId"])
    assert maker.ledger.redemption("m-1", made["redemptionId"]).status is RedemptionStatus.PENDING
    assert maker.ledger.summary("m-1").available == 500
    assert maker.make("m-1", made["redemptionId"]) is RedemptionStatus.ACTIVE
    assert len(shops.codes) == 1


def test_a_code_refused_for_good_gives_the_points_back_saying_why(maker: CodeMaker, shops: InMemoryShopCodes) -> None:
    made = redeemed(maker)
    shops.failures.append(ShopRefusedError("Minimum subtotal is not valid"))
    assert maker.make("m-1", made["redemptionId"]) is RedemptionStatus.REFUSED
    assert maker.ledger.summary("m-1").available == 1000
    [back] = [e for e in maker.ledger.entries("m-1") if e.source_key.startswith("redemption-return#")]
    assert back.reason == "The shop refused the code: Minimum subtotal is not valid"
    assert maker.ledger.check_invariants("m-1") == []
    assert not shops.codes


def test_a_maker_killed_between_the_shop_and_the_ledger_completes_once(
    maker: CodeMaker, shops: InMemoryShopCodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = redeemed(maker)

    def killed(*_: object) -> None:
        raise SystemExit("the instance died")

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "activate_redemption", killed)
        with pytest.raises(SystemExit):
            maker.make("m-1", made["redemptionId"])
    assert shops.has(SHOP, made["code"])  # the shop made it; the ledger does not know yet
    assert maker.make("m-1", made["redemptionId"]) is RedemptionStatus.ACTIVE  # the stream's retry
    assert len(shops.codes) == 1
    assert maker.ledger.summary("m-1").available == 500
    assert [e.points for e in maker.ledger.entries("m-1") if e.kind is EntryKind.REDEMPTION] == [-500]


def test_a_code_made_for_a_redemption_cancelled_meanwhile_is_removed(
    maker: CodeMaker, shops: InMemoryShopCodes
) -> None:
    made = redeemed(maker)
    rewards = MemberRewards(maker.ledger, maker.catalogue, maker.shops)
    real_create = shops.create

    def cancelled_while_made(request: CodeRequest) -> ShopCode:
        code = real_create(request)
        rewards.cancel("m-1", made["redemptionId"])  # the member cancels as the shop answers
        return code

    shops.create = cancelled_while_made  # type: ignore[method-assign]
    assert maker.make("m-1", made["redemptionId"]) is RedemptionStatus.CANCELLED
    assert not shops.has(SHOP, made["code"])
    assert maker.ledger.summary("m-1").available == 1000


def test_rewards_without_a_code_never_reach_a_shop(maker: CodeMaker, shops: InMemoryShopCodes) -> None:
    ledger = maker.ledger
    ledger.enrol("m-1")
    ledger.adjust("m-1", 500, "agent-1", "opening balance", "open")
    answer, _ = MemberRewards(ledger, maker.catalogue, maker.shops).redeem("m-1", {"rewardId": "plant-a-tree"}, "k-1")
    assert maker.make("m-1", answer["redemptionId"]) is RedemptionStatus.FULFILLED
    assert shops.calls == 0


def test_cancelling_an_active_code_removes_it_from_the_shop_first(maker: CodeMaker, shops: InMemoryShopCodes) -> None:
    made = redeemed(maker)
    maker.make("m-1", made["redemptionId"])
    rewards = MemberRewards(maker.ledger, maker.catalogue, shops)
    shops.failures.append(ShopRetryableError("the shop is down"))
    with pytest.raises(ShopRetryableError):  # not removed: nothing given back, the member may try again
        rewards.cancel("m-1", made["redemptionId"])
    assert maker.ledger.summary("m-1").available == 500
    assert rewards.cancel("m-1", made["redemptionId"])["status"] == "cancelled"
    assert not shops.has(SHOP, made["code"])
    assert maker.ledger.summary("m-1").available == 1000


EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.mark.parametrize(
    ("platform", "shop", "event", "email", "code_field"),
    [
        ("shopify", "demo-shop.myshopify.com", "shopify/orders_paid.json", "astrid.lindqvist@example.se",
         "discount_codes"),
        ("woocommerce", "https://kahvila.example.fi", "woocommerce/order_completed.json", "aino.virtanen@example.fi",
         "coupon_lines"),
    ],
)  # fmt: skip
def test_an_order_that_uses_the_code_marks_the_redemption_used_once(
    fakes: Fakes, maker: CodeMaker, clock: FakeClock, platform: str, shop: str, event: str, email: str,
    code_field: str,
) -> None:  # fmt: skip
    ledger = maker.ledger
    ledger.enrol("m-1", email=email)
    ledger.adjust("m-1", 1000, "agent-1", "opening balance", "open")
    catalogue_shop = f"{platform}:{shop.removeprefix('https://')}"
    rewards = MemberRewards(ledger, maker.catalogue, maker.shops)
    made, _ = rewards.redeem("m-1", {"rewardId": "50-off", "shop": catalogue_shop}, "k-1")
    maker.make("m-1", made["redemptionId"])
    clock.advance(days=14)  # the day the captured order was placed
    body = json.loads((EVENTS / event).read_text())
    body[code_field] = [{"code": "SPRING10"}, {"code": made["code"].lower()}]  # WooCommerce keeps codes lower case
    applier = ShopEventApplier(ledger, fakes.directory, 30, load_offer_rules(), fakes.offer_queue)
    delivery = QueuedWebhook(
        platform=platform,  # type: ignore[arg-type]
        topic="orders/paid" if platform == "shopify" else "order.updated",
        shop=shop,
        webhook_id="wh-1" if platform == "shopify" else None,
        body=json.dumps(body),
    )
    assert applier.deliver(delivery) == "order accrued"
    used = ledger.redemption("m-1", made["redemptionId"])
    assert used.status is RedemptionStatus.USED
    assert used.order_key == f"{catalogue_shop}#{body['id']}"
    assert applier.deliver(delivery) == "order redelivered: nothing changed"
    assert ledger.redemption("m-1", made["redemptionId"]) == used
    with pytest.raises(RedemptionRefusedError):  # a used code cannot be cancelled: its points stay spent
        rewards.cancel("m-1", made["redemptionId"])


# ---------------------------------------------------------------- the code's end


def code_jobs(fakes: Fakes, maker: CodeMaker) -> ScheduledJobs:
    return ScheduledJobs(
        maker.ledger, fakes.reviews, fakes.job_runs, fakes.offer_queue, load_offer_rules(), fakes.offer_records,
        end_unused_code=maker.end_unused,
    )  # fmt: skip


def on(clock: FakeClock, day: date) -> None:
    clock.now = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)


def test_a_code_unused_at_its_end_leaves_the_shop_and_its_points_come_back(
    fakes: Fakes, maker: CodeMaker, shops: InMemoryShopCodes, clock: FakeClock
) -> None:
    made = redeemed(maker)  # valid through 2026-04-01
    maker.make("m-1", made["redemptionId"])
    jobs = code_jobs(fakes, maker)
    on(clock, date(2026, 4, 1))
    assert jobs.run("code_expiry", date(2026, 4, 1)).changed == 0  # its last day: still valid
    on(clock, date(2026, 4, 2))
    assert jobs.run("code_expiry", date(2026, 4, 2)).changed == 1
    expired = maker.ledger.redemption("m-1", made["redemptionId"])
    assert (expired.status, expired.reason) == (
        RedemptionStatus.EXPIRED,
        "Code unused at its end: the points came back",
    )
    assert not shops.has(SHOP, made["code"])
    assert maker.ledger.summary("m-1").available == 1000
    assert maker.ledger.check_invariants("m-1") == []
    assert jobs.run("code_expiry", date(2026, 4, 2)).changed == 0  # run again: done already


def test_a_reward_whose_unused_codes_keep_their_points(
    fakes: Fakes, maker: CodeMaker, shops: InMemoryShopCodes, clock: FakeClock
) -> None:
    kept = tuple(
        r.model_copy(update={"return_points_on_expiry": False}) if r.id == "50-off" else r
        for r in maker.catalogue.rewards
    )
    keeping = replace(maker, catalogue=maker.catalogue.model_copy(update={"rewards": kept}))
    made = redeemed(keeping)
    keeping.make("m-1", made["redemptionId"])
    on(clock, date(2026, 4, 2))
    assert code_jobs(fakes, keeping).run("code_expiry", date(2026, 4, 2)).changed == 1
    assert maker.ledger.redemption("m-1", made["redemptionId"]).status is RedemptionStatus.EXPIRED
    assert not shops.has(SHOP, made["code"])
    assert maker.ledger.summary("m-1").available == 500


def test_a_used_code_is_not_ended(fakes: Fakes, maker: CodeMaker, clock: FakeClock) -> None:
    made = redeemed(maker)
    maker.make("m-1", made["redemptionId"])
    maker.ledger.use_redemption("m-1", made["redemptionId"], "shopify:demo-shop.myshopify.com#1")
    on(clock, date(2026, 4, 2))
    assert code_jobs(fakes, maker).run("code_expiry", date(2026, 4, 2)).changed == 0
    assert maker.ledger.redemption("m-1", made["redemptionId"]).status is RedemptionStatus.USED
    assert maker.ledger.summary("m-1").available == 500


# ---------------------------------------------------------------- from the CRM


def test_a_service_agent_redeems_for_a_member_from_a_flow_once(fakes: Fakes, maker: CodeMaker) -> None:
    ledger = maker.ledger
    ledger.enrol("m-1", email="anna@example.com")
    ledger.adjust("m-1", 1000, "agent-1", "opening balance", "open")
    rewards = MemberRewards(ledger, maker.catalogue)
    inbound = CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, "00D5g000004abcdEAA", lambda: "secret",
        lambda: "token", redeem_reward=rewards.redeem,
    )  # fmt: skip
    body = {
        "schemaVersion": 1,
        "type": "reward.redeem",
        "requestId": "0Fo5g00000aZ3kQ-redeem-1",
        "orgId": "00D5g000004abcdEAA",
        "requestedAt": "2026-03-02T09:20:11.000Z",
        "source": {"flowApiName": "Loyalty_Redeem_For_Member", "requestedByUserId": "0055g00000B2rQsAAJ"},
        "contact": {"id": "0035g00000Kp3XyAAJ", "loyaltyMemberId": "m-1", "email": None},
        "rewardId": "50-off",
        "shop": "demo-shop.myshopify.com",
    }
    raw = json.dumps(body).encode()
    answer = inbound.flow_callout(raw, {"x-loyalty-secret": "secret"})
    assert (answer["status"], answer["duplicate"], answer["redemptionStatus"]) == ("accepted", False, "pending")
    again = inbound.flow_callout(raw, {"x-loyalty-secret": "secret"})
    assert (again["duplicate"], again["redemptionId"]) == (True, answer["redemptionId"])
    redemption = ledger.redemption("m-1", answer["redemptionId"])
    assert redemption.actor == "salesforce-user:0055g00000B2rQsAAJ"  # audited
    [entry] = [e for e in ledger.entries("m-1") if e.kind is EntryKind.REDEMPTION]
    assert entry.actor == "salesforce-user:0055g00000B2rQsAAJ"
    assert ledger.summary("m-1").available == 500
    with pytest.raises(IdempotencyKeyReusedError):  # the same request id for another reward
        inbound.flow_callout(json.dumps(body | {"rewardId": "free-shipping"}).encode(), {"x-loyalty-secret": "secret"})
    with pytest.raises(RedemptionRefusedError):  # not enough points left: 409, nothing written
        inbound.flow_callout(
            json.dumps(body | {"requestId": "r-2", "rewardId": "10-percent"}).encode(), {"x-loyalty-secret": "secret"}
        )
    assert ledger.summary("m-1").available == 500


def test_the_contact_gets_a_reward_redeemed_task_for_the_mailed_code() -> None:
    sent = SendRecord(
        member_id="m-1",
        dedup="reward_redeemed#m-1#rdm_1",
        channel="email",
        status=Status.SENT,
        request="{}",
        decided_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        trigger="reward_redeemed",
        template_key="reward_redeemed",
        language="sv",
        subject="Din belöning: 50 kr rabatt",
    )
    fields = task_fields(sent, "0035g00000Kp3XyAAJ")
    assert fields["Subject"] == "Reward redeemed: Din belöning: 50 kr rabatt (code sent by E-mail)"
    assert fields["WhoId"] == "0035g00000Kp3XyAAJ"
