"""Shared fixtures: a fake clock, the programme rules, every port's in-memory fake, and the table on moto or the
official DynamoDB Local."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.dynamodb_local import DynamoDBLocal
from infra.local.template import create_table_kwargs
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from loyalty.programme.rules import ProgramRules, load_program
from loyalty.wiring import services

REGION = "eu-north-1"
_table_numbers = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With pytest-xdist (make test), the end-to-end tests share one worker and so one embedded stack."""
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("embedded_stack"))


@pytest.fixture(scope="session", autouse=True)
def _aws_test_environment() -> Iterator[None]:
    """Fake credentials and no endpoint overrides: tests never reach a real AWS account."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _settings_read_afresh() -> Iterator[None]:
    """Settings and services are cached per process as in a Lambda container; a test that sets the environment
    sees it."""
    services.reset()
    yield
    services.reset()


class FakeClock:
    """A clock the test moves by hand; each reading is one microsecond after the last, so times stay ordered."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def private_key() -> str:
    """An RSA key for the Salesforce client's JWT bearer login to the org emulator."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def rules() -> ProgramRules:
    return load_program()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """The official DynamoDB Local, started once for the session and stopped afterwards."""
    with DynamoDBLocal() as local:
        yield local.url


@pytest.fixture(scope="module")
def own_dynamodb_local() -> Iterator[str]:
    """A DynamoDB Local of the module's own, for the long runs (a year, hundreds of random histories), so
    they never wait on what other tests left in the shared one."""
    with DynamoDBLocal() as local:
        yield local.url


@cache
def dynamodb_client(endpoint_url: str | None) -> Any:
    """One client per endpoint for the test session: each costs tens of milliseconds to create."""
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)


def create_table(endpoint_url: str | None = None) -> str:
    name = f"loyalty-test-{os.getpid()}-{next(_table_numbers)}"
    client = dynamodb_client(endpoint_url) if endpoint_url else boto3.client("dynamodb", region_name=REGION)
    client.create_table(**create_table_kwargs(name))
    client.get_waiter("table_exists").wait(TableName=name)
    bind_table(name, region=REGION, host=endpoint_url)
    return name


@pytest.fixture
def moto_table() -> Iterator[str]:
    with mock_aws():
        yield create_table()


@pytest.fixture
def local_table(dynamodb_local: str) -> Iterator[str]:
    """A table of its own on the shared DynamoDB Local, dropped afterwards (DynamoDB Local slows down as
    tables pile up in its memory)."""
    name = create_table(dynamodb_local)
    yield name
    dynamodb_client(dynamodb_local).delete_table(TableName=name)


@pytest.fixture
def fakes() -> Fakes:
    """Every port's in-memory fake, on one memory (as the adapters share one table)."""
    return Fakes()


@pytest.fixture
def ledger(fakes: Fakes, rules: ProgramRules, clock: FakeClock) -> Ledger:
    """The ledger on its in-memory store (tests/contract holds the store to the DynamoDB store's behaviour)."""
    return Ledger(fakes.ledger_store, rules, clock=clock)
