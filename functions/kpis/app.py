"""The table's stream to the monthly figures: each member who joined, each new ledger entry, each NPS answer and
each offer decided added to its month's counters, for the programme (and for an entry's member's tier and segment),
once however often the stream delivers it (a failed batch is retried whole: what was counted is skipped)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.kpis.flows import business_figures
from loyalty.observability import logger, metrics
from loyalty.wiring import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    counting = services.kpi_counting()
    changes = services.kpi_changes(event)
    counting.count_enrolments(changes.enrolled)
    exposed = counting.count_offers(changes.offers)  # before the entries: an order in the same batch converts
    added = counting.count(changes.entries)
    answered = counting.count_answers(changes.answers)
    moved = counting.count_moves(changes.moves)
    guests = counting.count_guest_orders(changes.guest_orders)
    metrics.add_metric(name="KpiEntriesCounted", unit="Count", value=len(added))
    metrics.add_metric(name="KpiNpsAnswersCounted", unit="Count", value=answered)
    metrics.add_metric(name="KpiOfferMembersCounted", unit="Count", value=exposed)
    metrics.add_metric(name="KpiMemberMovesCounted", unit="Count", value=moved)
    metrics.add_metric(name="KpiGuestOrdersCounted", unit="Count", value=guests)
    for name, value in business_figures(added).items():  # the programme's figures as they happen, each entry once
        metrics.add_metric(name=name, unit="Count", value=value)
    return {"batchItemFailures": []}
