"""The programme's scheduled jobs (EventBridge schedules): release, expiry, expiry warnings, birthdays, reviews,
SMS held through quiet hours, and CRM pushes asked for again (stale and unlinked members)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from loyalty.clock import now
from loyalty.jobs import JobName
from loyalty.observability import logger, metrics
from loyalty.wiring import services


class ScheduledRun(BaseModel):
    """The schedule's input: which job, and optionally the run date (to rerun a date by hand)."""

    model_config = ConfigDict(extra="ignore")

    job: JobName
    day: date | None = None


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = parse(event=event, model=ScheduledRun)
    metrics.add_dimension(name="job", value=run.job)
    jobs = services.scheduled_jobs()
    today = run.day or jobs.rules.local_date(now())
    report = jobs.run(run.job, today, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name="JobItemsProcessed", unit="Count", value=report.processed)
    metrics.add_metric(name="JobItemsChanged", unit="Count", value=report.changed)
    return report.as_dict()
