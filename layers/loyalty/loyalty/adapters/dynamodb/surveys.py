"""NPS answers on the table: MEMBER#<id> / NPS#<survey>, on the due index under NPS#<YYYY-MM>."""

from __future__ import annotations

from datetime import UTC

from pynamodb.exceptions import PutError, UpdateError

from loyalty.adapters.dynamodb.models import LoyaltyItem, NpsAnswerItem, condition_failed, member_pk
from loyalty.ports.surveys import NpsAnswer

NPS_PREFIX = "NPS#"


class DynamoDBNpsAnswers:
    def save(self, answer: NpsAnswer) -> bool:
        item = NpsAnswerItem(
            member_pk(answer.member_id),
            f"{NPS_PREFIX}{answer.survey_id}",
            member_id=answer.member_id,
            survey_id=answer.survey_id,
            score=answer.score,
            responded_at=answer.responded_at,
            month=answer.month,
            segment=answer.segment,
            tier=answer.tier,
            comment=answer.comment,
            request_id=answer.request_id,
            due_pk=f"NPS#{answer.month}",
            due_sk=f"{answer.responded_at.astimezone(UTC).isoformat()}#{answer.member_id}#{answer.survey_id}",
        )
        try:  # the first answer, or one given later than the one kept
            item.save(condition=NpsAnswerItem.pk.does_not_exist() | (NpsAnswerItem.responded_at < answer.responded_at))
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def answered_in(self, month: str) -> list[NpsAnswer]:
        return [nps_answer(item) for item in LoyaltyItem.due.query(f"NPS#{month}") if isinstance(item, NpsAnswerItem)]

    def of_member(self, member_id: str) -> list[NpsAnswer]:
        return [nps_answer(item) for item in self._theirs(member_id)]

    def forget_comments(self, member_id: str) -> int:
        dropped = 0
        for item in self._theirs(member_id):
            if item.comment is None:
                continue
            try:
                item.update(actions=[NpsAnswerItem.comment.remove()], condition=NpsAnswerItem.pk.exists())
            except UpdateError as error:
                if not condition_failed(error):
                    raise
            dropped += 1
        return dropped

    @staticmethod
    def _theirs(member_id: str) -> list[NpsAnswerItem]:
        query = LoyaltyItem.query(member_pk(member_id), LoyaltyItem.sk.startswith(NPS_PREFIX), consistent_read=True)
        return [item for item in query if isinstance(item, NpsAnswerItem)]


def nps_answer(item: NpsAnswerItem) -> NpsAnswer:
    return NpsAnswer(
        member_id=item.member_id,
        survey_id=item.survey_id,
        score=int(item.score),
        responded_at=item.responded_at,
        month=item.month,
        segment=item.segment,
        tier=item.tier,
        comment=item.comment,
        request_id=item.request_id,
    )
