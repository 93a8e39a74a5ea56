"""The programme's scheduled jobs (EventBridge schedules): release, expiry, expiry warnings, birthdays, reviews,
and SMS held through quiet hours."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from loyalty.adapters.dynamodb_job_runs import JobRuns
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.adapters.dynamodb_offers import OfferStore
from loyalty.adapters.dynamodb_reviews import Reviews
from loyalty.adapters.sqs_offer_queue import OfferQueue
from loyalty.clock import now
from loyalty.jobs import JobName, ScheduledJobs
from loyalty.observability import logger, metrics
from loyalty.offer_rules import load_offer_rules
from loyalty.program import load_program
from loyalty.settings import ScheduledJobsSettings, load_settings


class ScheduledRun(BaseModel):
    """The schedule's input: which job, and optionally the run date (to rerun a date by hand)."""

    model_config = ConfigDict(extra="ignore")

    job: JobName
    day: date | None = None


@cache
def _jobs() -> ScheduledJobs:
    settings = load_settings(ScheduledJobsSettings)
    bind_table(settings.table)
    return ScheduledJobs(
        Ledger(load_program()),
        Reviews(),
        JobRuns(),
        OfferQueue(settings.offer_queue_url).send,
        load_offer_rules(),
        held_offers=OfferStore().held_due,
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = parse(event=event, model=ScheduledRun)
    jobs = _jobs()
    today = run.day or jobs.rules.local_date(now())
    report = jobs.run(run.job, today, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_dimension(name="job", value=run.job)
    metrics.add_metric(name="JobItemsProcessed", unit="Count", value=report.processed)
    metrics.add_metric(name="JobItemsChanged", unit="Count", value=report.changed)
    return {
        "job": report.job,
        "datesDone": [day.isoformat() for day in report.dates_done],
        "processed": report.processed,
        "changed": report.changed,
        "complete": report.complete,
    }
