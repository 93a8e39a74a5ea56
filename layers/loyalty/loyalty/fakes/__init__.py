"""In-memory fakes of every port, sharing one `Memory` as the DynamoDB adapters share one table.

Each passes the same contract tests as the adapter it stands in for (tests/contract), so use-case tests can
trust them and run without a database. `Fakes` builds the set of them on one memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loyalty.fakes.channels import InMemoryEmail, InMemorySms
from loyalty.fakes.crm import InMemoryCrmStates, InMemoryOrg
from loyalty.fakes.directory import InMemoryDirectory
from loyalty.fakes.job_runs import InMemoryJobRuns
from loyalty.fakes.kpis import InMemoryKpiStore
from loyalty.fakes.ledger import InMemoryLedgerStore
from loyalty.fakes.memory import Memory
from loyalty.fakes.offers import InMemoryOfferQueue, InMemoryOfferRecords
from loyalty.fakes.privacy import InMemoryDeadLetters, InMemoryExports
from loyalty.fakes.queues import InMemoryLedgerQueue
from loyalty.fakes.reports import InMemoryReportStore
from loyalty.fakes.reviews import InMemoryReviews
from loyalty.fakes.surveys import InMemoryNpsAnswers


@dataclass
class Fakes:
    """Every port's fake, on one memory."""

    memory: Memory = field(default_factory=Memory)

    def __post_init__(self) -> None:
        self.ledger_store = InMemoryLedgerStore(self.memory)
        self.directory = InMemoryDirectory(self.memory)
        self.reviews = InMemoryReviews(self.memory)
        self.job_runs = InMemoryJobRuns(self.memory)
        self.offer_records = InMemoryOfferRecords(self.memory)
        self.crm_states = InMemoryCrmStates(self.memory)
        self.nps_answers = InMemoryNpsAnswers(self.memory)
        self.kpis = InMemoryKpiStore(self.memory)
        self.org = InMemoryOrg()
        self.reports = InMemoryReportStore()
        self.exports = InMemoryExports()
        self.dead_letters = InMemoryDeadLetters()
        self.offer_queue = InMemoryOfferQueue()
        self.ledger_queue = InMemoryLedgerQueue()
        self.email = InMemoryEmail()
        self.sms = InMemorySms()
