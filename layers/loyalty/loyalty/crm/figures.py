"""The monthly figures in the CRM: a Loyalty_Programme_KPI__c record per month and group (the programme, each
segment, each tier), upserted by its key, so a day's push updates the month's records and never adds a second."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.crm.fields import CONTENT_VERSION, KPI, KPI_KEY, kpi_records
from loyalty.errors import CrmRequestError, CrmRetryableError
from loyalty.observability import logger, metrics
from loyalty.ports.crm import CrmClient


@dataclass
class CrmFigures:
    client: CrmClient

    def push(self, rows: Iterable[Mapping[str, Any]], currency: str) -> dict[str, str]:
        """Upsert the months' records (GET /kpis rows; money in ``currency``); each written record's id by its key.
        A record the org cannot take now fails the run (the schedule's next run writes it); one it refuses is
        logged."""
        records = kpi_records(rows, currency)
        written: dict[str, str] = {}
        for record, result in zip(records, self.client.upsert_records(KPI, KPI_KEY, records), strict=True):
            if result.success and result.record_id:
                written[record[KPI_KEY]] = result.record_id
            elif result.retryable:
                raise CrmRetryableError("a KPI record could not be written for now")
            else:
                errors = "; ".join(f"{code}: {message}" for code, message in result.errors)
                logger.warning("KPI record refused", key=record[KPI_KEY], reason=errors)
                metrics.add_metric(name="CrmKpiRecordsRefused", unit="Count", value=1)
        return written

    def attach(self, record_id: str, title: str, file_name: str, content: bytes) -> str:
        """A Salesforce File (a ContentVersion) with ``content``, shared with the record: the monthly report on the
        month's KPI record, where CRM users find it; the File's version id."""
        version = {
            "Title": title,
            "PathOnClient": file_name,
            "VersionData": base64.b64encode(content).decode(),
            "FirstPublishLocationId": record_id,
        }
        (result,) = self.client.create_records(CONTENT_VERSION, [version])
        if not result.success or not result.record_id:
            errors = "; ".join(f"{code}: {message}" for code, message in result.errors)
            raise (CrmRetryableError if result.retryable else CrmRequestError)(f"the report File was refused: {errors}")
        return result.record_id
