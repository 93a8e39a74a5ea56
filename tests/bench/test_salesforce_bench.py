"""Salesforce API calls to push 1,000 changed members, once and after ten changes each, counted by the org emulator."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.local.dynamodb_local import free_port
from infra.local.salesforce_emulator import SalesforceEmulator
from loyalty.adapters.dynamodb.crm_states import DynamoDBCrmStates
from loyalty.adapters.dynamodb.directory import DynamoDBDirectory
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.adapters.salesforce import JwtCredentials, SalesforceClient
from loyalty.crm.sync import CrmSync
from loyalty.ledger.service import Ledger
from loyalty.programme.rules import ProgramRules
from tests.bench.conftest import Figures
from tests.conftest import create_table

MEMBERS = 1000


def _sync(org: SalesforceEmulator, rules: ProgramRules) -> CrmSync:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    credentials = JwtCredentials("bench-app", pem.decode(), "integration@loyalty.local", org.url)
    return CrmSync(
        Ledger(DynamoDBLedgerStore(), rules),
        SalesforceClient(credentials=lambda: credentials),
        DynamoDBCrmStates(),
        DynamoDBDirectory(),
        DynamoDBOfferRecords(),
    )


def test_salesforce_calls_per_1000_members(own_dynamodb_local: str, rules: ProgramRules, figures: Figures) -> None:
    create_table(own_dynamodb_local)  # its own DynamoDB Local: 13,000 ledger writes, not slowed by earlier benches
    with SalesforceEmulator(port=free_port()) as org:
        sync = _sync(org, rules)
        members = []
        for number in range(MEMBERS):
            email = f"bench{number}@example.com"
            members.append(sync.ledger.enrol(f"b{number:05d}", email=email))
            org.create_contact_as_user({"LastName": f"Bench {number}", "Email": email})
        sync.push(members)  # first push links by e-mail
        # once: every member changed once
        for member in members:
            sync.ledger.bonus(member, "review", f"{member}-once", points=5)
        org.reset_counts()
        sync.push(members)
        once = org.api_calls
        # ten times: each member changed ten times before the push; the batch holds every change record
        for member in members:
            for change in range(10):
                sync.ledger.bonus(member, "review", f"{member}-{change}", points=1)
        org.reset_counts()
        sync.push([member for member in members for _ in range(10)])
        tenfold = org.api_calls
    print(f"\nSalesforce calls for {MEMBERS} changed members: {once}; changed ten times each: {tenfold}")
    figures.record("salesforce_calls_per_1000_members", once, "<= 5")
    figures.record("salesforce_calls_per_1000_members_10x", tenfold, "<= 5")
