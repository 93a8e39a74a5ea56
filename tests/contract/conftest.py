"""Each port's contract, run against its in-memory fake and its real adapter (DynamoDB Local for the stores), so
the fakes the use-case tests trust cannot drift from what production runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from loyalty.fakes import Fakes
from loyalty.ledger.store import LedgerStore
from loyalty.offers.records import OfferRecords
from loyalty.ports.crm import CrmStates
from loyalty.ports.directory import Directory
from loyalty.ports.job_runs import JobRuns
from loyalty.ports.reviews import Reviews
from loyalty.ports.surveys import NpsAnswers


@dataclass
class Stores:
    """The stores of one backend, sharing its data as they share the table in production."""

    backend: str
    ledger: LedgerStore
    directory: Directory
    reviews: Reviews
    job_runs: JobRuns
    offer_records: OfferRecords
    crm_states: CrmStates
    nps_answers: NpsAnswers


def _dynamodb_stores() -> Stores:
    from loyalty.adapters.dynamodb.crm_states import DynamoDBCrmStates
    from loyalty.adapters.dynamodb.directory import DynamoDBDirectory
    from loyalty.adapters.dynamodb.job_runs import DynamoDBJobRuns
    from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
    from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
    from loyalty.adapters.dynamodb.reviews import DynamoDBReviews
    from loyalty.adapters.dynamodb.surveys import DynamoDBNpsAnswers

    return Stores(
        "dynamodb",
        DynamoDBLedgerStore(),
        DynamoDBDirectory(),
        DynamoDBReviews(),
        DynamoDBJobRuns(),
        DynamoDBOfferRecords(),
        DynamoDBCrmStates(),
        DynamoDBNpsAnswers(),
    )


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.dynamodb_local)])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    if request.param == "memory":
        fakes = Fakes()
        yield Stores(
            "memory",
            fakes.ledger_store,
            fakes.directory,
            fakes.reviews,
            fakes.job_runs,
            fakes.offer_records,
            fakes.crm_states,
            fakes.nps_answers,
        )
        return
    request.getfixturevalue("local_table")
    yield _dynamodb_stores()


def due(job_runs: JobRuns, partitions: list[tuple[str, str | None]], page_size: int = 100) -> list[Any]:
    """Every item of due work in the partitions, read page by page as a job does."""
    found = []
    for partition, up_to in partitions:
        for page, _ in job_runs.due_pages(partition, None, page_size, up_to):
            found += page
    return found
