"""When each member's tier and segment are next looked at (the due index, REVIEW#<date>), and their segment."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb_models import (
    MEMBER_SK,
    REVIEW_SK,
    MemberItem,
    ReviewItem,
    member_pk,
    review_due,
    table_connection,
)
from loyalty.segments import Segment


class Reviews:
    def schedule(self, member_id: str, on: date) -> None:
        """Make sure the member is reviewed on ``on`` or earlier (a later review is brought forward)."""
        item = ReviewItem(member_pk(member_id), REVIEW_SK)
        try:
            item.update(
                actions=[
                    ReviewItem.type.set(ReviewItem),
                    ReviewItem.member_id.set(member_id),
                    ReviewItem.review_on.set(on.isoformat()),
                    ReviewItem.due_pk.set(review_due(member_id, on)[0]),
                    ReviewItem.due_sk.set(review_due(member_id, on)[1]),
                ],
                condition=ReviewItem.review_on.does_not_exist() | (ReviewItem.review_on > on.isoformat()),
            )
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise  # else an earlier review is already due

    def record(
        self,
        member_id: str,
        segment: Segment,
        judged_on: date,
        at: datetime,
        next_review: date,
        activity_seen: datetime | None,
    ) -> None:
        """Store the member's segment (judged for ``judged_on``, computed at ``at``) and when to look again.

        ``activity_seen`` is the member's last activity when the review read them. If the member did something
        since (an order while the review ran), the segment is stored all the same and the member is looked at
        again the next day, so the order is not left out until a later review."""
        try:
            self._record(member_id, segment, judged_on, at, next_review, activity_seen)
        except TransactWriteError as error:
            reasons = error.cancellation_reasons or []
            if activity_seen is None or not any(r and r.code == "ConditionalCheckFailed" for r in reasons):
                raise
            self.record(member_id, segment, judged_on, at, min(next_review, judged_on + timedelta(days=1)), None)

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
            transaction.save(
                ReviewItem(
                    member_pk(member_id),
                    REVIEW_SK,
                    member_id=member_id,
                    review_on=next_review.isoformat(),
                    due_pk=review_due(member_id, next_review)[0],
                    due_sk=review_due(member_id, next_review)[1],
                )
            )
