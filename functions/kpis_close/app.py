"""The monthly close (an EventBridge schedule, daily): the month just ended gets its closing figures (members,
active members, points outstanding), again each day of the next month so an entry the stream brought late is in
them; then that month's and this month's figures, for the programme and each segment and tier, are written to
Salesforce as Loyalty_Programme_KPI__c records. Input {"job": "kpi_close", "day": "YYYY-MM-DD"} closes the month
before that day by hand. Monthly ({"job": "kpi_report"}): the report of the 12 months up to the month just ended
written to S3 (REPORT_BUCKET) and attached as a Salesforce File to that month's programme KPI record."""

from __future__ import annotations

from datetime import date
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from loyalty.clock import now
from loyalty.kpis.flows import shift_month
from loyalty.observability import logger, metrics
from loyalty.programme.tiers import month_key
from loyalty.wiring import services


def month_metrics(row: dict[str, Any], currency: str) -> dict[str, float]:
    """The closed month's business figures as CloudWatch metrics (EMF): members, active, liability, shares."""
    average = row["averageOrderValue"].get(currency)
    shown = {
        "Members": row["members"],
        "ActiveMembers": row["activeMembers"],
        "PointsOutstanding": row["pointsOutstanding"],
        "PointsLiability": float(row["liability"]["amount"]),
        "ActiveSharePercent": 100 * row["activeShare"] if row["activeShare"] is not None else None,
        "ReturningSharePercent": 100 * row["returningShare"] if row["returningShare"] is not None else None,
        "AverageOrderValue": float(average) if average is not None else None,
        "Nps": row["nps"],
    }
    return {name: float(value) for name, value in shown.items() if value is not None}


class CloseRun(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job: str = "kpi_close"  # or kpi_report: the month's report written and attached in the CRM
    day: date | None = None


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = parse(event=event, model=CloseRun)
    closing = services.kpi_closing()
    today = run.day or services.programme_rules().local_date(now())
    month = shift_month(month_key(today), -1)
    if run.job == "kpi_report":
        return monthly_report(month)
    closed = {name: int(value) for name, value in closing.close(month).items()}
    logger.info("month closed", extra={"month": month, **closed})
    metrics.add_metric(name="KpiMonthsClosed", unit="Count", value=1)
    figures = services.kpi_figures()
    answers = list(figures.answers(month, month_key(today), ("segment", "tier")).values())
    ended = next(row for row in answers[0]["months"] if row["month"] == month and row["group"] == "programme")
    for name, value in month_metrics(ended, answers[0]["reportingCurrency"]).items():
        metrics.add_metric(name=name, unit="None", value=value)
    rows = [row for answer in answers for row in answer["months"]]
    written = services.crm_figures().push(rows, answers[0]["reportingCurrency"])
    metrics.add_metric(name="CrmKpiRecordsWritten", unit="Count", value=len(written))
    return {"month": month, **closed, "crmRecords": len(written)}


def monthly_report(month: str) -> dict[str, Any]:
    """The report of the 12 months up to ``month`` written to S3, and attached as a Salesforce File to the month's
    programme KPI record (the month's records written first, so the File has its record)."""
    files = services.monthly_report().write(month)
    crm = services.crm_figures()
    records = crm.push(files.rows, files.currency)
    file_id = crm.attach(
        records[f"{month}#programme"],
        f"Loyalty programme report {month}",
        f"loyalty-report-{month}.html",
        files.html,
    )
    logger.info("monthly report written", month=month, files=list(files.locations))
    return {"month": month, "files": list(files.locations), "crmFile": file_id}
