"""The monthly figures as people read them (GET /kpis, the report, the CRM): counts, shares and money derived from
the months' counters and closing figures.

Shares are fractions (0.25 is 25 %), None where the month has nothing to divide by. Money is exact, per currency,
to the hundredth. Definitions:

* returning-customer share: of the month's purchasing members, those who had bought in an earlier month;
* average order value: the month's order value (ex-VAT, after discounts, net of refunds) over its orders, per
  currency; purchase frequency: orders per purchasing member; the same for non-members (guest checkouts the
  shops send, by their hashed e-mail; as bought: their refunds are not known to the programme), in guest*;
* active share: members with an order or a redemption in the last 12 months, of the members at the month's end;
* redemption rate and breakage: points redeemed, and points expired, over points issued in the month;
* points liability: the points outstanding (available and pending) at the month's end times a point's value in
  the reporting currency (infra/rewards.yaml);
* 12-month customer value per member: the order value of the 12 months up to the month over the members at its
  end (historical); the projection for the next 12 months is the latest three months' value, times four, over
  the members at the month's end (a run rate: it assumes the coming year buys as the last quarter did);
* offers measured against a holdout (infra/offers.yaml `holdout`): every member an offer was for is in the
  offered arm or the holdout (drawn before consent and caps, so the offered arm keeps those whose message was
  refused or capped: intention to treat); converted: an order within `conversion_days` of the decision; revenue:
  those orders' value in the reporting currency (other currencies at the programme's earning rates), before
  refunds. Lift is offered less holdout, with a 95 % confidence interval: for the purchase rate
  d +/- 1.96 * sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0) (Wald, unpooled); for revenue per member
  d +/- 1.96 * sqrt(s1^2 / n1 + s0^2 / n0) (Welch, normal approximation; s^2 the sample variance of each member's
  revenue). An interval that contains 0 shows no effect measured. Offers count in the month they were decided;
  a range sums its months. Offers sent and measured, upgrades, downgrades and segment moves are the programme's
  figures (a tier's or segment's arms would be too small for an interval worth reading; the members each tier
  and segment gains and loses are its members' change);
* ROI: the offers' incremental revenue (revenue per member lift times the offered members) over the cost of the
  points redeemed in the range (redeemed less returned, at a point's value), less one;
* by tier and by segment: each member in their earned tier (a CRM user's override aside) and their segment. What
  happens counts in the group the member is in when it is counted; a member who moves takes their points and
  their active spell to the new group in the month of the move, so each group's members, active members and
  points outstanding add up to the programme's. A group's 12-month customer value is the order value its members
  placed while in it, over its members at the month's end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from loyalty.errors import MalformedPayloadError
from loyalty.kpis.closing import Month, months, months_between
from loyalty.kpis.flows import COUNTERS, net_promoter_score, shift_month
from loyalty.ports.kpis import PROGRAMME, Count, KpiStore
from loyalty.programme.rewards import RewardCatalogue

CENT = Decimal("0.01")
MAX_MONTHS = 36  # a request reads each month and the 11 before the first (the 12-month value)
By = Literal["segment", "tier"]


class KpiRequestError(MalformedPayloadError):
    """A request for figures the API cannot answer (a month not as YYYY-MM, a range backwards or too long)."""


def _share(part: Count, whole: Count) -> float | None:
    return round(float(part) / float(whole), 4) if whole else None


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _per_currency(counts: Mapping[str, Count], figure: str) -> dict[str, Decimal]:
    prefix = f"{figure}#"
    return {name.removeprefix(prefix): Decimal(value) for name, value in counts.items() if name.startswith(prefix)}


def _order_value(months: Sequence[Month], group: str) -> dict[str, Decimal]:
    """A group's order value of the months, per currency."""
    total: dict[str, Decimal] = {}
    for month in months:
        for currency, value in _per_currency(month.figures.get(group, {}), "order_value").items():
            total[currency] = total.get(currency, Decimal(0)) + value
    return total


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass
class KpiFigures:
    store: KpiStore
    catalogue: RewardCatalogue

    def months(self, first: str, last: str, by: By | None = None) -> dict[str, Any]:
        """The figures of the months ``first`` to ``last`` (YYYY-MM), for the programme and, with ``by``, for
        each segment or tier: what GET /kpis answers."""
        return self.answers(first, last, (by,))[by]

    def answers(self, first: str, last: str, bys: Sequence[By | None]) -> dict[By | None, dict[str, Any]]:
        """The answer of ``months`` for each grouping in ``bys``, the months read once for all of them (the report
        and the close want the segments' and the tiers')."""
        _check_range(first, last)
        earlier = shift_month(first, -11)  # the 12-month customer value looks a year back
        read = list(months(self.store, earlier, last))
        in_range = [month for month in read if month.month >= first]
        years = {month.month: read[max(0, index - 11) : index + 1] for index, month in enumerate(read)}
        programme = [self._row(month, years[month.month], PROGRAMME) for month in in_range]
        offers = offer_lifts(in_range)
        roi = self._roi(in_range, offers)
        found = {}
        for by in bys:
            rows = []
            for month, row in zip(in_range, programme, strict=True):
                rows.append(row)
                if by is not None:
                    rows += self._group_rows(month, years[month.month], f"{by}#")
            found[by] = {
                "from": first,
                "to": last,
                "by": by,
                "reportingCurrency": self.catalogue.reporting,
                "definitions": __doc__.split("Definitions:", 1)[1].strip() if __doc__ else "",
                "months": rows,
                "offers": offers,
                "roi": roi,
            }
        return found

    def _group_rows(self, month: Month, year: Sequence[Month], prefix: str) -> list[dict[str, Any]]:
        """Each segment's or tier's row of the month (``prefix``: ``segment#`` or ``tier#``)."""
        groups = {g for g in month.figures if g.startswith(prefix)}
        groups |= {n.partition("#")[2] for n in month.closing if n.partition("#")[2].startswith(prefix)}
        return [self._row(month, year, group) for group in sorted(groups)]

    def _roi(self, in_range: Sequence[Month], offers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        point_value = self.catalogue.point_value_in(self.catalogue.reporting)
        spent = sum(
            Decimal(m.figures.get(PROGRAMME, {}).get("points_redeemed", 0))
            - Decimal(m.figures.get(PROGRAMME, {}).get("points_returned", 0))
            for m in in_range
        )
        cost = spent * point_value
        incremental = sum((Decimal(offer["incrementalRevenue"]) for offer in offers), Decimal(0))
        return {
            "incrementalRevenue": _money(incremental),
            "pointsCost": _money(cost),
            "ratio": round(float(incremental / cost - 1), 4) if cost else None,
        }

    def _row(self, month: Month, year: Sequence[Month], group: str) -> dict[str, Any]:
        """A group's row of the month (the programme, a tier or a segment); ``year``: the 12 months up to it."""
        counts = month.figures.get(group, {})
        suffix = "" if group == PROGRAMME else f"#{group}"
        members = month.closing.get(f"members{suffix}")
        active = month.closing.get(f"active_members{suffix}", 0)
        outstanding = month.closing.get(f"points_outstanding{suffix}", 0)
        point_value = self.catalogue.point_value_in(self.catalogue.reporting)
        value_year, value_quarter = _order_value(year, group), _order_value(year[-3:], group)
        return {
            "month": month.month,
            "group": group,
            "closed": month.closed,
            "members": members,
            "newMembers": counts.get("members_enrolled", 0),
            "activeMembers": active,
            "activeShare": _share(active, members or 0),
            **self._flows(counts),
            "pointsOutstanding": outstanding,
            "pointsOpening": month.opening.get(f"points_outstanding{suffix}", 0),
            "liability": {"amount": _money(Decimal(outstanding) * point_value), "currency": self.catalogue.reporting},
            "customerValue12Months": {c: _money(v / members) for c, v in sorted(value_year.items()) if members},
            "customerValueProjected12Months": {
                c: _money(v * 4 / members) for c, v in sorted(value_quarter.items()) if members
            },
        }

    @staticmethod
    def _flows(counts: Mapping[str, Count]) -> dict[str, Any]:
        """What a group's counters of a month say (any group: the programme, a tier, a segment)."""
        orders, purchasers = counts.get("orders", 0), counts.get("purchasers", 0)
        issued = counts.get("points_issued", 0)
        value, orders_in = _per_currency(counts, "order_value"), _per_currency(counts, "orders")
        guest_value, guest_orders = _per_currency(counts, "guest_order_value"), _per_currency(counts, "guest_orders")
        nps = net_promoter_score(counts)
        return {
            **{
                _camel(name): counts.get(name, 0)
                for name in COUNTERS
                if name not in ("active_change", "points_held", "members_change")
            },
            "returningShare": _share(counts.get("returning_purchasers", 0), purchasers),
            "purchaseFrequency": _share(orders, purchasers),
            "orderValue": {currency: _money(amount) for currency, amount in sorted(value.items())},
            "averageOrderValue": {
                currency: _money(amount / orders_in[currency])
                for currency, amount in sorted(value.items())
                if orders_in.get(currency)
            },
            "guestPurchaseFrequency": _share(counts.get("guest_orders", 0), counts.get("guest_purchasers", 0)),
            "guestAverageOrderValue": {
                currency: _money(amount / guest_orders[currency])
                for currency, amount in sorted(guest_value.items())
                if guest_orders.get(currency)
            },
            "redemptionRate": _share(counts.get("points_redeemed", 0), issued),
            "breakage": _share(counts.get("points_expired", 0), issued),
            "nps": round(nps, 1) if nps is not None else None,
            "offersSent": {
                name.removeprefix("offers_sent#"): int(value)
                for name, value in sorted(counts.items())
                if name.startswith("offers_sent#")
            },
        }


Z95 = 1.96


def _arm(figures: Mapping[str, Count], trigger: str, arm: str) -> dict[str, Decimal]:
    key = f"{trigger}#{arm}"
    return {
        what: Decimal(figures.get(f"offer_{what}#{key}", 0))
        for what in ("members", "converted", "revenue", "revenue_sq")
    }


def offer_lifts(in_range: Sequence[Month]) -> list[dict[str, Any]]:
    """Each measured offer's arms over the months and the lift with its 95 % interval (see the definitions)."""
    summed: dict[str, int | Decimal] = {}
    for month in in_range:
        for name, value in month.figures.get(PROGRAMME, {}).items():
            if name.startswith("offer_"):
                summed[name] = summed.get(name, 0) + value
    triggers = sorted({name.split("#")[1] for name in summed if name.startswith("offer_members#")})
    lifts = []
    for trigger in triggers:
        offered, holdout = _arm(summed, trigger, "offered"), _arm(summed, trigger, "holdout")
        rate, revenue = _rate_lift(offered, holdout), _revenue_lift(offered, holdout)
        incremental = Decimal(revenue["difference"]) * offered["members"] if revenue else Decimal(0)
        lifts.append(
            {
                "trigger": trigger,
                "offered": _arm_view(offered),
                "holdout": _arm_view(holdout),
                "lift": {"purchaseRate": rate, "revenuePerMember": revenue},
                "incrementalRevenue": _money(incremental),
            }
        )
    return lifts


def _arm_view(arm: Mapping[str, Decimal]) -> dict[str, Any]:
    n = arm["members"]
    return {
        "members": int(n),
        "converted": int(arm["converted"]),
        "purchaseRate": _share(arm["converted"], n),
        "revenue": _money(arm["revenue"]),
        "revenuePerMember": _money(arm["revenue"] / n) if n else None,
    }


def _rate_lift(offered: Mapping[str, Decimal], holdout: Mapping[str, Decimal]) -> dict[str, float] | None:
    n1, n0 = float(offered["members"]), float(holdout["members"])
    if not n1 or not n0:
        return None
    p1, p0 = float(offered["converted"]) / n1, float(holdout["converted"]) / n0
    margin = Z95 * math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    difference = p1 - p0
    return {
        "difference": round(difference, 4),
        "low": round(difference - margin, 4),
        "high": round(difference + margin, 4),
    }


def _revenue_lift(offered: Mapping[str, Decimal], holdout: Mapping[str, Decimal]) -> dict[str, str] | None:
    if offered["members"] < 2 or holdout["members"] < 2:
        return None
    means, variances = [], []
    for arm in (offered, holdout):
        n = arm["members"]
        mean = arm["revenue"] / n
        means.append(mean)
        variances.append(max(Decimal(0), (arm["revenue_sq"] - n * mean * mean) / (n - 1)) / n)
    difference = means[0] - means[1]
    margin = Decimal(Z95) * (variances[0] + variances[1]).sqrt()
    return {"difference": _money(difference), "low": _money(difference - margin), "high": _money(difference + margin)}


def _check_range(first: str, last: str) -> None:
    for name, month in (("from", first), ("to", last)):
        if not (len(month) == 7 and month[4] == "-" and month[:4].isdigit() and month[5:].isdigit()):
            raise KpiRequestError(f"`{name}` must be a month as YYYY-MM, not {month!r}")
        if not 1 <= int(month[5:]) <= 12:
            raise KpiRequestError(f"`{name}` has no month {month[5:]!r}")
    if last < first:
        raise KpiRequestError(f"`to` ({last}) is before `from` ({first})")
    if len(months_between(first, last)) > MAX_MONTHS:
        raise KpiRequestError(f"at most {MAX_MONTHS} months at once")
