"""The member's tier and segment on their shop customers: pushed when the tier in force, the segment or the member's
customers change, once per member per batch (the last image), to the programme's shops only; and the stream's
member images read as the use case needs them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from loyalty.adapters.dynamodb.stream import member_images
from loyalty.errors import ShopRefusedError, ShopRetryableError
from loyalty.fakes.shops import InMemoryShopCustomers
from loyalty.ports.shops import MemberImages, MemberTags
from loyalty.programme.rules import ProgramRules
from loyalty.programme.tiers import TierOverride
from loyalty.shop.customer_labels import CustomerLabeller

SHOPIFY = "shopify:demo-shop.myshopify.com"
WOO = "woocommerce:kahvila.example.fi"
TODAY = datetime(2026, 6, 1, 9, tzinfo=UTC)


@pytest.fixture
def shops() -> InMemoryShopCustomers:
    return InMemoryShopCustomers()


@pytest.fixture
def labeller(shops: InMemoryShopCustomers, rules: ProgramRules) -> CustomerLabeller:
    return CustomerLabeller(shops, rules, lambda: TODAY, frozenset({SHOPIFY, WOO}))


def tags(
    tier: str | None = None,
    segment: str | None = "satisfaction",
    customers: tuple[tuple[str, str], ...] = ((SHOPIFY, "42"),),
    member_id: str = "m-1",
    override: TierOverride | None = None,
) -> MemberTags:
    return MemberTags(member_id, tier, override, segment, frozenset(customers))


def test_only_a_change_the_shop_shows_is_pushed(labeller: CustomerLabeller) -> None:
    points_only = MemberImages("1", tags(), tags())
    assert labeller.plan([points_only]) == {}
    upgraded = MemberImages("2", tags(), tags("silver"))
    moved = MemberImages("3", tags(), tags(segment="price"))
    linked = MemberImages("4", tags(customers=()), tags())
    enrolled = MemberImages("5", None, tags())
    for change in (upgraded, moved, linked, enrolled):
        assert labeller.plan([change]) == {change.key: change.after}
    assert labeller.plan([MemberImages("6", None, tags(customers=()))]) == {}  # no shop customer: nothing to do


def test_a_batch_is_coalesced_per_member_into_its_last_image_at_its_first_change(labeller: CustomerLabeller) -> None:
    batch = [
        MemberImages("1", tags(), tags("silver")),
        MemberImages("2", tags("silver"), tags("silver", member_id="m-2")),  # another member, nothing changed
        MemberImages("3", tags("silver"), tags("silver", "price")),
        MemberImages("4", tags("silver", "price"), tags("silver", "price")),  # points only, after the changes
    ]
    # pushed at the member's first change: a failed push is retried from there (Lambda restarts the batch at the
    # failed record), so the change is still in the batch that is tried again
    assert labeller.plan(batch) == {"1": tags("silver", "price")}
    assert labeller.plan(batch[2:]) == {"3": tags("silver", "price")}
    assert labeller.plan(batch[3:]) == {}  # a retry that began after the change would miss it: hence the first
    back_and_forth = [MemberImages("5", tags(), tags("silver")), MemberImages("6", tags("silver"), tags())]
    assert labeller.plan(back_and_forth) == {}  # the shop already shows what the member ended the batch as


def test_a_crm_users_override_is_the_tier_the_shop_gets(
    labeller: CustomerLabeller, shops: InMemoryShopCustomers
) -> None:
    override = TierOverride("gold", date(2026, 12, 31), "VIP event", "user-1")
    change = MemberImages("1", tags("silver"), tags("silver", override=override))
    [member] = labeller.plan([change]).values()
    labeller.push(member)
    assert shops.labels[(SHOPIFY, "42")].tier == "gold"
    # And once it has run out (no write removes it from the item), the member's next change puts the earned tier back
    expired = TierOverride("gold", date(2026, 5, 31), "VIP event", "user-1")
    [member] = labeller.plan(
        [MemberImages("2", tags("silver", override=expired), tags("silver", override=expired))]
    ).values()
    labeller.push(member)
    assert shops.labels[(SHOPIFY, "42")].tier == "silver"


def test_each_shop_customer_gets_the_whole_truth(labeller: CustomerLabeller, shops: InMemoryShopCustomers) -> None:
    customers = ((SHOPIFY, "42"), (WOO, "17"), ("shopify:not-ours.myshopify.com", "9"))
    assert labeller.push(tags("gold", "ambassador", customers)) == 2  # a shop the programme has no access to: left
    shopify = shops.labels[(SHOPIFY, "42")]
    assert (shopify.tier, shopify.segment, shopify.other_tiers) == (
        "gold",
        "ambassador",
        ("bronze", "silver", "platinum"),
    )
    assert shops.labels[(WOO, "17")].tier == "gold"
    assert labeller.push(tags(None, None)) == 1 and shops.labels[(SHOPIFY, "42")].tier == "bronze"  # the lowest


def test_a_refusal_is_left_and_a_shop_that_cannot_answer_now_is_tried_again(
    labeller: CustomerLabeller, shops: InMemoryShopCustomers
) -> None:
    shops.failures = [ShopRefusedError("Customer does not exist")]
    assert labeller.push(tags("silver", customers=((SHOPIFY, "42"), (WOO, "17")))) == 1
    shops.failures = [ShopRetryableError("503")]
    with pytest.raises(ShopRetryableError):
        labeller.push(tags("silver"))


def _image(**attributes: Any) -> dict[str, Any]:
    """A member item as the stream carries it (DynamoDB JSON)."""
    image = {"pk": {"S": "MEMBER#m-1"}, "sk": {"S": "MEMBER"}, "type": {"S": "member"}, "member_id": {"S": "m-1"}}
    return image | attributes


def _record(sequence: str, name: str, new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    change = {"SequenceNumber": sequence, "Keys": {}, "NewImage": new, "StreamViewType": "NEW_AND_OLD_IMAGES",
              "SizeBytes": 1, "ApproximateCreationDateTime": 1} | ({"OldImage": old} if old else {})  # fmt: skip
    return {
        "eventID": sequence,
        "eventVersion": "1.1",
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-north-1",
        "eventSourceARN": "arn:aws:dynamodb:eu-north-1:1:table/t/stream/s",
        "dynamodb": change,
    }


def test_the_streams_member_images_carry_tier_override_segment_and_customers() -> None:
    override = {
        "M": {"tier": {"S": "gold"}, "valid_until": {"S": "2026-12-31"}, "reason": {"S": "VIP"}, "actor": {"S": "u"}}
    }
    after = _image(
        tier={"S": "silver"}, segment={"S": "price"}, tier_override=override,
        customers={"SS": [f"{SHOPIFY}#42", f"{WOO}#17"]},
    )  # fmt: skip
    records = [_record("100", "INSERT", _image(), None), _record("101", "MODIFY", after, _image())]
    first, second = member_images({"Records": records})
    assert first == MemberImages("100", None, MemberTags("m-1", None, None, None, frozenset()))
    assert second.key == "101" and second.before == first.after
    assert second.after == MemberTags(
        "m-1", "silver", TierOverride("gold", date(2026, 12, 31), "VIP", "u"), "price",
        frozenset({(SHOPIFY, "42"), (WOO, "17")}),
    )  # fmt: skip
