"""NPS answers: one per member and survey (a later answer replaces it, a repeat or an older one changes nothing),
found by the month they count in, and their comments forgotten on erasure while the scores stay."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from loyalty.ports.surveys import NpsAnswer
from tests.contract.conftest import Stores

AT = datetime(2026, 11, 21, 9, 10, 2, tzinfo=UTC)


def answer(
    member: str, score: int, at: datetime = AT, survey: str = "s-2026-11", comment: str | None = None
) -> NpsAnswer:
    month = at.strftime("%Y-%m")
    request = f"r-{member}-{at:%H%M}"
    return NpsAnswer(member, survey, score, at, month, "satisfaction_driven", "silver", comment, request)


def test_one_answer_per_member_and_survey_the_latest_kept(stores: Stores) -> None:
    answers = stores.nps_answers
    # Given an answer
    first = answer("m1", 6, comment="Slow delivery")
    assert answers.save(first)
    # When it comes again, or an older answer to the same survey comes late
    assert not answers.save(first)
    assert not answers.save(answer("m1", 2, at=AT - timedelta(hours=1)))
    assert answers.answered_in("2026-11") == [first]
    # When the member answers the same survey again later, and another survey
    later = answer("m1", 9, at=AT + timedelta(hours=2), comment=None)
    other = answer("m1", 10, survey="s-2026-q4")
    assert answers.save(later) and answers.save(other)
    # Then the later answer replaced the first; the other survey's counts on its own, oldest first
    assert answers.answered_in("2026-11") == [other, later]


def test_answers_are_found_by_the_month_they_count_in(stores: Stores) -> None:
    answers = stores.nps_answers
    october = answer("m1", 8, at=datetime(2026, 10, 31, 22, 30, tzinfo=UTC))
    november = replace(answer("m2", 3, at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC)), month="2026-11")  # CET
    for each in (october, november):
        assert answers.save(each)
    assert answers.answered_in("2026-10") == [october]
    assert answers.answered_in("2026-11") == [november]
    assert answers.answered_in("2026-12") == []


def test_erasure_forgets_the_comments_and_keeps_the_scores(stores: Stores) -> None:
    answers = stores.nps_answers
    assert answers.save(answer("m1", 4, comment="Anna Lindqvist here, call me"))
    assert answers.save(answer("m1", 7, survey="s2", comment="ok"))
    assert answers.save(answer("m2", 9, comment="Great"))
    assert answers.forget_comments("m1") == 2
    assert answers.forget_comments("m1") == 0
    kept = {(a.member_id, a.survey_id): (a.score, a.comment) for a in answers.answered_in("2026-11")}
    assert kept == {("m1", "s-2026-11"): (4, None), ("m1", "s2"): (7, None), ("m2", "s-2026-11"): (9, "Great")}
