"""When each member's tier and segment are next looked at (the due index, REVIEW#<shard>, sorted by date), and
their segment."""

from __future__ import annotations

from datetime import date, datetime

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb.models import (
    MEMBER_SK,
    REVIEW_SK,
    MemberItem,
    ReviewItem,
    condition_failed,
    member_pk,
    review_brought_forward,
    review_due,
    table_connection,
)
from loyalty.programme.segments import Segment


class DynamoDBReviews:
    def schedule(self, member_id: str, on: date) -> None:
        """Make sure the member is reviewed on ``on`` or earlier (a later review is brought forward)."""
        actions, later_or_none = review_brought_forward(member_id, on)
        try:
            ReviewItem(member_pk(member_id), REVIEW_SK).update(actions=actions, condition=later_or_none)
        except UpdateError as error:
            if not condition_failed(error):
                raise  # else an earlier review is already due

    def record(
        self, member_id: str, segment: Segment, judged_on: date, at: datetime, next_review: date,
        activity_seen: datetime | None,
    ) -> bool:  # fmt: skip
        try:
            self._record(member_id, segment, judged_on, at, next_review, activity_seen)
        except TransactWriteError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def reschedule(self, member_id: str, next_review: date, activity_seen: datetime | None) -> bool:
        unchanged = MemberItem.pk.exists()
        if activity_seen is not None:
            unchanged &= MemberItem.last_activity == activity_seen
        try:
            with TransactWrite(connection=table_connection()) as transaction:
                transaction.condition_check(MemberItem, member_pk(member_id), MEMBER_SK, condition=unchanged)
                transaction.save(_review_item(member_id, next_review))
        except TransactWriteError as error:
            if condition_failed(error):
                return False
            raise
        return True

    @staticmethod
    def _record(member_id: str, segment: Segment, judged_on: date, at: datetime, next_review: date,
                activity_seen: datetime | None) -> None:  # fmt: skip
        unchanged = MemberItem.pk.exists()
        if activity_seen is not None:
            unchanged &= MemberItem.last_activity == activity_seen
        with TransactWrite(connection=table_connection()) as transaction:
            transaction.update(
                MemberItem(member_pk(member_id), MEMBER_SK),
                [
                    MemberItem.segment.set(segment.name),
                    MemberItem.segment_reason.set(segment.reason),
                    MemberItem.segment_rfm.set(segment.rfm),
                    MemberItem.segment_on.set(judged_on.isoformat()),
                    MemberItem.segment_at.set(at),
                ],
                condition=unchanged,
                add_version_condition=False,
            )
            transaction.save(_review_item(member_id, next_review))


def _review_item(member_id: str, next_review: date) -> ReviewItem:
    due_pk, due_sk = review_due(member_id, next_review)
    on = next_review.isoformat()
    return ReviewItem(member_pk(member_id), REVIEW_SK, member_id=member_id, review_on=on, due_pk=due_pk, due_sk=due_sk)
