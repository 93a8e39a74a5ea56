"""NPS answers in memory."""

from __future__ import annotations

from dataclasses import replace

from loyalty.fakes.memory import Memory
from loyalty.ports.surveys import NpsAnswer


class InMemoryNpsAnswers:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    def save(self, answer: NpsAnswer) -> bool:
        with self.memory.atomically():
            answers = self.memory.items("nps")
            kept = answers.get((answer.member_id, answer.survey_id))
            if kept is not None and kept.responded_at >= answer.responded_at:
                return False
            answers[answer.member_id, answer.survey_id] = answer
            return True

    def answered_in(self, month: str) -> list[NpsAnswer]:
        with self.memory.atomically():
            found = [answer for answer in self.memory.items("nps").values() if answer.month == month]
        return sorted(found, key=lambda a: (a.responded_at, a.member_id, a.survey_id))

    def of_member(self, member_id: str) -> list[NpsAnswer]:
        with self.memory.atomically():
            found = [answer for key, answer in self.memory.items("nps").items() if key[0] == member_id]
        return sorted(found, key=lambda a: a.survey_id)

    def forget_comments(self, member_id: str) -> int:
        with self.memory.atomically():
            answers = self.memory.items("nps")
            theirs = [key for key, answer in answers.items() if key[0] == member_id and answer.comment is not None]
            for key in theirs:
                answers[key] = replace(answers[key], comment=None)
            return len(theirs)
