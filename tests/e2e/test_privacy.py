"""A person's data on request through the embedded stack, driven as the org and the shop drive it: a CRM user's
Flow exports a member's data (a link to a JSON file) and erases them; Shopify's privacy webhooks do the same; after
an erasure no item of the table, the idempotency records, the dead-letter queues or the exports holds the
person's e-mail, phone, name, birthday or address, while their points stay."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3

from infra.local.stack import Stack
from tests.e2e.conftest import Shop, payload
from tests.e2e.test_salesforce import CALLOUT_SECRET, callout


def person() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "email": f"privacy-{tag}@example.se",
        "first": f"Ingrid{tag}",
        "last": f"Sjöberg{tag}",
        "phone": f"+4670{int(tag, 16) % 10_000_000:07d}",
        "street": f"Kvarngatan {tag}",
        "birthday": "1987-06-23",
    }


def shopper(stack: Stack, shop: Shop, who: dict[str, str]) -> tuple[int, str, str]:
    """The person as the shop knows them (a customer with an address, and an order shipped to it) and as the CRM
    does (a Contact with their birthday); returns (customer id, member id, Contact id)."""
    customer_id = int(time.time() * 1000)
    customer: dict[str, Any] = json.loads(payload("shopify/customers_create.json"))
    address = {**customer["default_address"], "address1": who["street"], "phone": who["phone"]}
    customer.update(
        id=customer_id, email=who["email"], first_name=who["first"], last_name=who["last"], phone=who["phone"],
        addresses=[address], default_address=address,
    )  # fmt: skip
    assert shop.shopify("customers/create", json.dumps(customer).encode())[0] == 200
    order: dict[str, Any] = json.loads(payload("shopify/orders_paid.json"))
    order.update(id=5_950_000_000_000 + customer_id % 1_000_000, email=who["email"], phone=who["phone"])
    order["customer"] = {**order["customer"], "id": customer_id, "email": who["email"]}
    order["shipping_address"] = order["billing_address"] = {**order["shipping_address"], "address1": who["street"]}
    assert shop.shopify("orders/paid", json.dumps(order).encode())[0] == 200
    stack.wait_idle()
    member_id = shop.get(f"/members?email={who['email']}")[1]["memberId"]
    contact_id = stack.salesforce.create_contact_as_user(
        {"FirstName": who["first"], "LastName": who["last"], "Email": who["email"]}
    )
    stack.salesforce.update_contact_as_user(contact_id, {"Birthdate": who["birthday"]})
    assert stack.salesforce.wait_for_outbound(timeout=30)
    stack.wait_idle()
    _, member = shop.get(f"/members/{member_id}")
    assert member["profile"]["birthdate"] == who["birthday"]
    return customer_id, member_id, contact_id


def flow(stack: Stack, kind: str, member_id: str) -> dict[str, Any]:
    body = callout(stack, "member.enrol", type=kind, contact={"id": None, "loyaltyMemberId": member_id, "email": None})
    status, answer = stack.salesforce.send_flow_callout(
        f"{stack.gateway_url}/webhooks/salesforce/flow", body, CALLOUT_SECRET
    )
    assert status == 202, answer
    return answer


def download(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def everything_kept(stack: Stack) -> str:
    """Every item of the programme's table and idempotency records, and every dead-letter message, as text."""
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.dynamodb_url)
    texts = []
    for table in (stack.names["LoyaltyTable"], stack.names["IdempotencyTable"]):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            texts += [json.dumps(item, ensure_ascii=False) for item in page["Items"]]
    return "\n".join(texts + dead_letters(stack))


def dead_letters(stack: Stack) -> list[str]:
    """The bodies of every message in the dead-letter queues (read, and left there)."""
    sqs = boto3.client("sqs")
    bodies: dict[str, str] = {}
    for queue in ("LedgerDeadLetterQueue", "OfferDeadLetterQueue"):
        for _ in range(3):  # several reads: a receive may not return every message at once
            answer = sqs.receive_message(
                QueueUrl=stack.names[queue], MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1
            )
            bodies |= {message["MessageId"]: message["Body"] for message in answer.get("Messages", [])}
    return list(bodies.values())


def test_a_crm_user_exports_and_erases_a_member_and_nothing_of_the_person_is_left(stack: Stack, shop: Shop) -> None:
    who = person()
    _, member_id, contact_id = shopper(stack, shop, who)
    _, before = shop.get(f"/members/{member_id}")
    journal = "Loyalty_Transaction__c"
    assert [r for r in stack.salesforce.records(journal) if r["Member_Id__c"] == member_id]
    failed = json.dumps({"topic": "customers/update", "body": {"email": who["email"], "phone": who["phone"]}})
    boto3.client("sqs").send_message(QueueUrl=stack.names["LedgerDeadLetterQueue"], MessageBody=failed)
    # When a CRM user's Flow asks for the member's data
    exported = flow(stack, "member.export", member_id)
    # Then the link in the answer downloads it: the profile, and every ledger entry
    status, body = download(exported["downloadUrl"])
    data = json.loads(body)
    assert status == 200 and data["member"]["email"] == who["email"] and data["member"]["birthdate"] == who["birthday"]
    assert len(data["entries"]) >= 1 and exported["expiresInDays"] == 7
    # And the table and the dead letters hold the person's data until the erasure
    assert failed in dead_letters(stack)
    kept = everything_kept(stack)
    assert who["email"] in kept and who["first"] in kept
    # When a CRM user's Flow erases the member
    flow(stack, "member.erase", member_id)
    stack.wait_idle()
    # Then no item, idempotency record or dead letter holds their e-mail, phone, name, birthday or address
    assert failed not in dead_letters(stack)
    kept = everything_kept(stack)
    for what, value in who.items():
        assert value not in kept, f"the person's {what} is still kept"
    # And the org keeps the Contact (the org's) without the programme's journal records and loyalty fields
    assert [r for r in stack.salesforce.records(journal) if r["Member_Id__c"] == member_id] == []
    contact = stack.salesforce.contact(contact_id)
    assert contact["Loyalty_Member_Id__c"] is None and contact.get("Loyalty_Points__c") is None
    # And the export is gone; the points stay
    assert download(exported["downloadUrl"])[0] == 404
    _, after = shop.get(f"/members/{member_id}")
    assert after["points"] == before["points"] and after["profile"]["email"] is None


def test_shopifys_privacy_webhooks_export_and_erase_the_customer(stack: Stack, shop: Shop) -> None:
    who = person()
    customer_id, member_id, _ = shopper(stack, shop, who)
    exports = boto3.client("s3")
    bucket = stack.names["ExportBucket"]

    def privacy(topic: str, name: str) -> None:
        body: dict[str, Any] = json.loads(payload(f"shopify/{name}.json"))
        if "customer" in body:
            body["customer"] = {"id": customer_id, "email": who["email"], "phone": who["phone"]}
        assert shop.shopify(topic, json.dumps(body).encode())[0] == 200
        stack.wait_idle()

    # When the shop sends the customer's data request
    privacy("customers/data_request", "customers_data_request")
    # Then the merchant's export is in the export bucket, named after the request
    listed = exports.list_objects_v2(Bucket=bucket, Prefix=f"exports/{member_id}/")
    (key,) = [item["Key"] for item in listed.get("Contents", [])]
    assert key.endswith("-data-request-40981.json")
    data = json.loads(exports.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert data["member"]["email"] == who["email"]
    # When the shop asks to erase the customer
    privacy("customers/redact", "customers_redact")
    # Then nothing of the person is kept, nor the export
    kept = everything_kept(stack)
    for what, value in who.items():
        assert value not in kept, f"the person's {what} is still kept"
    assert exports.list_objects_v2(Bucket=bucket, Prefix=f"exports/{member_id}/").get("KeyCount", 0) == 0
