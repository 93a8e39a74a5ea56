"""Per member: the Contact fields as last pushed, and whether the member is synced, parked, unlinked or stale."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from pynamodb.exceptions import UpdateError

from loyalty.adapters.dynamodb.models import CRM_STATE_SK, CrmStateItem, LoyaltyItem, condition_failed, member_pk
from loyalty.ports.crm import NOT_IN_SYNC, CrmState


class DynamoDBCrmStates:
    def states(self, member_ids: Iterable[str]) -> dict[str, CrmState]:
        keys = [(member_pk(member_id), CRM_STATE_SK) for member_id in sorted(set(member_ids))]
        found: dict[str, CrmState] = {}
        for item in LoyaltyItem.batch_get(keys, consistent_read=True) if keys else []:
            if isinstance(item, CrmStateItem):
                found[item.member_id] = CrmState(
                    pushed=dict(item.pushed.as_dict()), status=item.status, reason=item.reason
                )
        return found

    def save(self, states: Mapping[str, CrmState], at: datetime) -> None:
        with LoyaltyItem.batch_write() as batch:  # 25 a request; what the table returns unprocessed is retried
            for member_id, state in sorted(states.items()):
                parked = state.status in NOT_IN_SYNC
                batch.save(
                    CrmStateItem(
                        member_pk(member_id),
                        CRM_STATE_SK,
                        member_id=member_id,
                        pushed=dict(state.pushed),
                        status=state.status,
                        reason=state.reason,
                        updated_at=at,
                        due_pk=f"CRM#{state.status}" if parked else None,
                        due_sk=member_id if parked else None,
                    )
                )

    def not_in_sync(self, status: str) -> list[tuple[str, str | None]]:
        """Members parked, unlinked or stale, with the reason: the list an operator looks at."""
        return [
            (item.member_id, item.reason)
            for item in LoyaltyItem.due.query(f"CRM#{status}")
            if isinstance(item, CrmStateItem)
        ]

    def request_push(self, member_ids: Iterable[str], at: datetime) -> None:
        """Mark each member's state (one update each: the rest of the state stays as the push last saved it); a
        member without a state is skipped (never pushed: its first change brings it)."""
        for member_id in sorted(set(member_ids)):
            try:
                CrmStateItem(member_pk(member_id), CRM_STATE_SK).update(
                    actions=[CrmStateItem.push_requested.set(True), CrmStateItem.push_requested_at.set(at)],
                    condition=CrmStateItem.pk.exists(),
                )
            except UpdateError as error:
                if not condition_failed(error):
                    raise
