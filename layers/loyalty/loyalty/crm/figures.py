"""The monthly figures in the CRM: a Loyalty_Programme_KPI__c record per month and group (the programme, each
segment, each tier), upserted by its key, so a day's push updates the month's records and never adds a second."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.crm.fields import KPI, KPI_KEY, kpi_records
from loyalty.errors import CrmRetryableError
from loyalty.observability import logger, metrics
from loyalty.ports.crm import CrmClient


@dataclass
class CrmFigures:
    client: CrmClient

    def push(self, rows: Iterable[Mapping[str, Any]], currency: str) -> int:
        """Upsert the months' records (GET /kpis rows; money in ``currency``); the records written. A record the
        org cannot take now fails the run (the schedule's next run writes it); one it refuses is logged."""
        records = kpi_records(rows, currency)
        written = 0
        for record, result in zip(records, self.client.upsert_records(KPI, KPI_KEY, records), strict=True):
            if result.success:
                written += 1
            elif result.retryable:
                raise CrmRetryableError("a KPI record could not be written for now")
            else:
                errors = "; ".join(f"{code}: {message}" for code, message in result.errors)
                logger.warning("KPI record refused", key=record[KPI_KEY], reason=errors)
                metrics.add_metric(name="CrmKpiRecordsRefused", unit="Count", value=1)
        return written
