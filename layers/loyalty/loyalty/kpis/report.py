"""The monthly report: one HTML file with its charts drawn as SVG inside it (no script, no CDN: it opens from a
disk, a mail or a Salesforce File), and the same figures as CSV, with finance's roll-forward of points.

Built from GET /kpis answers (loyalty.kpis.figures): the programme's months, and the same months by segment and
by tier.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from loyalty.kpis.figures import KpiFigures
from loyalty.kpis.flows import shift_month
from loyalty.ports.reports import ReportStore

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 680, 240, 56, 36, 14, 136
COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7c86", "#57606a")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _ticks(high: float) -> list[float]:
    if high <= 0:
        return [0.0, 1.0]
    step = 10 ** len(str(int(high))) / 10 if high >= 1 else 0.1
    while high / step > 6:
        step *= 2
    return [step * n for n in range(math.ceil(high / step) + 1)]


def line_chart(
    title: str, months: Sequence[str], series: Sequence[Series], unit: str = "", high: float | None = None
) -> Markup:
    """Lines over the months (a gap where a month has no value), with axes, ticks and a legend; the axis up to
    ``high`` if given, else to the highest value."""
    values = [v for s in series for v in s.values if v is not None]
    ticks = _ticks(high if high is not None else max(values, default=0.0))
    top = ticks[-1] or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(months) - 1, 1)

    def x(i: int) -> float:
        return LEFT + i * step

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" class="tick" text-anchor="end">{_fmt(tick)}{unit}</text>'
        )
    for i, month in enumerate(months):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick" text-anchor="middle">{month[2:]}</text>'
        )
    for n, line in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, value in enumerate(line.values):
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(value):.1f}")
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="2.5" fill="{colour}"/>')
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(_legend(n, line.name))
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars(title: str, months: Sequence[str], parts_by_name: Mapping[str, Sequence[float]]) -> Markup:
    """Each month's bar split into the named parts, as shares of the month's whole (the mix)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    width = plot_w / max(len(months), 1)
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0, 25, 50, 75, 100):
        ty = TOP + plot_h * (1 - tick / 100)
        svg.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" class="grid"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" class="tick" text-anchor="end">{tick}%</text>')
    names = list(parts_by_name)
    for i, month in enumerate(months):
        whole = sum(parts_by_name[name][i] for name in names)
        bottom: float = TOP + plot_h
        for n, name in enumerate(names):
            share = parts_by_name[name][i] / whole if whole else 0
            h = plot_h * share
            bottom -= h
            svg.append(
                f'<rect x="{LEFT + i * width + 2:.1f}" y="{bottom:.1f}" width="{width - 4:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[n % len(COLOURS)]}"><title>{escape(name)} {month}: {share:.0%}</title></rect>'
            )
        svg.append(
            f'<text x="{LEFT + (i + 0.5) * width:.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick" '
            f'text-anchor="middle">{month[2:]}</text>'
        )
    for n, name in enumerate(names):
        svg.append(_legend(n, name))
    svg.append("</svg>")
    return Markup("".join(svg))


def bars(title: str, values: Mapping[str, float]) -> Markup:
    """Horizontal bars, one per name, in the order given (a funnel when the names are ranked)."""
    row, high = 28, max(values.values(), default=0) or 1
    height = TOP + row * len(values) + 8
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    for n, (name, value) in enumerate(values.items()):
        w = (WIDTH - LEFT - RIGHT - 40) * value / high
        ty = TOP + n * row
        svg.append(f'<text x="{LEFT + 40}" y="{ty + 16}" class="tick" text-anchor="end">{escape(name)}</text>')
        colour = COLOURS[n % len(COLOURS)]
        svg.append(f'<rect x="{LEFT + 46}" y="{ty + 4}" width="{w:.1f}" height="{row - 8}" fill="{colour}"/>')
        svg.append(f'<text x="{LEFT + 52 + w:.1f}" y="{ty + 16}" class="tick">{_fmt(value)}</text>')
    svg.append("</svg>")
    return Markup("".join(svg))


def interval_chart(title: str, rows: Sequence[tuple[str, float, float, float]], unit: str = "") -> Markup:
    """Each row's estimate as a dot with its interval as a bar, around a line at zero (no effect)."""
    row_h = 30
    height = TOP + row_h * max(len(rows), 1) + BOTTOM
    reach = max([abs(v) for _, d, lo, hi in rows for v in (d, lo, hi)] + [1e-9])
    plot_left, plot_w = LEFT + 90, WIDTH - LEFT - 90 - RIGHT

    def x(v: float) -> float:
        return plot_left + plot_w * (v + reach) / (2 * reach)

    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{TOP}" y2="{height - BOTTOM}" class="grid"/>',
        f'<text x="{x(0):.1f}" y="{height - BOTTOM + 16}" class="tick" text-anchor="middle">0</text>',
        f'<text x="{x(-reach):.1f}" y="{height - BOTTOM + 16}" class="tick">{_fmt(-reach)}{unit}</text>',
        f'<text x="{x(reach):.1f}" y="{height - BOTTOM + 16}" class="tick" text-anchor="end">',
        f"{_fmt(reach)}{unit}</text>",
    ]
    for n, (name, difference, low, high) in enumerate(rows):
        cy, colour = TOP + n * row_h + row_h / 2, COLOURS[n % len(COLOURS)]
        svg.append(f'<text x="{plot_left - 8}" y="{cy + 4:.1f}" class="tick" text-anchor="end">{escape(name)}</text>')
        svg.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" ')
        svg.append(f'stroke="{colour}" stroke-width="3"/>')
        svg.append(f'<circle cx="{x(difference):.1f}" cy="{cy:.1f}" r="5" fill="{colour}"/>')
        svg.append(
            f'<text x="{WIDTH - RIGHT + 8}" y="{cy + 4:.1f}" class="tick">{_fmt(difference)}{unit} '
            f"({_fmt(low)} to {_fmt(high)})</text>"
        )
    svg.append("</svg>")
    return Markup("".join(svg))


def _legend(n: int, name: str) -> str:
    colour, shown = COLOURS[n % len(COLOURS)], escape(name.replace("_", " "))
    return f'<text x="{WIDTH - RIGHT + 8}" y="{TOP + 12 + 16 * n}" fill="{colour}" class="legend">{shown}</text>'


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def offer_rows(answer: Mapping[str, Any]) -> list[tuple[str, float, float, float]]:
    """The measured offers' purchase-rate lift in percentage points, with its interval (those with one)."""
    rows = []
    for offer in answer.get("offers", []):
        lift = offer["lift"]["purchaseRate"]
        if lift is not None:
            rows.append((offer["trigger"].replace("_", " "), *(100 * lift[k] for k in ("difference", "low", "high"))))
    return rows


def _percent(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


def _money(amounts: Mapping[str, str], currency: str) -> float | None:
    return float(amounts[currency]) if currency in amounts else None


def _group_rows(answer: Mapping[str, Any], prefix: str) -> dict[str, dict[str, Mapping[str, Any]]]:
    """name -> month -> row, for the rows of one kind of group (``segment#`` or ``tier#``)."""
    groups: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in answer.get("months", []):
        if row["group"].startswith(prefix):
            groups.setdefault(row["group"].removeprefix(prefix), {})[row["month"]] = row
    return groups


def programme_rows(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [row for row in answer["months"] if row["group"] == "programme"]


def twelve_month_table(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The programme's table: month, returning-customer %, average order value (each currency), active members %."""
    return [
        {
            "month": row["month"],
            "returning_percent": _percent(row["returningShare"]),
            "average_order_value": dict(row["averageOrderValue"]),
            "active_percent": _percent(row["activeShare"]),
        }
        for row in programme_rows(answer)
    ]


def render_html(by_segment: Mapping[str, Any], by_tier: Mapping[str, Any], tier_order: Sequence[str]) -> str:
    """The report from two GET /kpis answers over the same months (by segment, by tier)."""
    rows = programme_rows(by_segment)
    months = [row["month"] for row in rows]
    reporting = by_segment["reportingCurrency"]
    currencies = sorted({c for row in rows for c in row["averageOrderValue"]})
    segments = _group_rows(by_segment, "segment#")
    tiers = _group_rows(by_tier, "tier#")
    charts = {
        "shares": line_chart(
            "Returning customers and active members",
            months,
            [
                Series("returning", [_percent(r["returningShare"]) for r in rows]),
                Series("active", [_percent(r["activeShare"]) for r in rows]),
            ],
            unit="%",
            high=100,
        ),
        "order_value": line_chart(
            "Average order value",
            months,
            [Series(c, [_money(r["averageOrderValue"], c) for r in rows]) for c in currencies],
        ),
        "liability": line_chart(
            f"Points liability ({reporting})",
            months,
            [Series(reporting, [float(r["liability"]["amount"]) for r in rows])],
        ),
        "segments": stacked_bars(
            "The segment mix: members by segment at each month's end",
            months,
            {
                name.replace("_", " "): [float(segments[name].get(m, {}).get("members") or 0) for m in months]
                for name in sorted(segments)
            },
        ),
        "lift": interval_chart(
            "Purchase rate lift of the offers, with its 95 % interval", offer_rows(by_segment), " pp"
        ),
        "tiers": bars(
            f"The tier funnel: members by tier at the end of {months[-1] if months else '-'}",
            {
                name: float(tiers.get(name, {}).get(months[-1], {}).get("members") or 0) if months else 0.0
                for name in [*tier_order, *sorted(set(tiers) - set(tier_order))]
            },
        ),
    }
    environment = Environment(loader=PackageLoader("loyalty.kpis", "templates"), autoescape=select_autoescape())
    return environment.get_template("report.html").render(
        first=by_segment["from"],
        last=by_segment["to"],
        reporting=reporting,
        currencies=currencies,
        table=twelve_month_table(by_segment),
        rows=rows,
        roll_forward=roll_forward(by_segment),
        charts=charts,
        definitions=by_segment.get("definitions", ""),
        offers=by_segment.get("offers", []),
        roi=by_segment.get("roi"),
    )


def roll_forward(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Finance's monthly roll-forward of points: opening + issued - reversed + unrecovered - redeemed + returned -
    expired + adjusted = closing; the liability, and the liability less the breakage expected from the last 12
    months' rate (points expired over points issued)."""
    rows = programme_rows(answer)
    result = []
    for index, row in enumerate(rows):
        year = rows[max(0, index - 11) : index + 1]
        issued, expired = sum(r["pointsIssued"] for r in year), sum(r["pointsExpired"] for r in year)
        rate = Decimal(expired) / Decimal(issued) if issued else Decimal(0)
        liability = Decimal(row["liability"]["amount"])
        result.append(
            {
                "month": row["month"],
                "opening": row["pointsOpening"],
                "issued": row["pointsIssued"],
                "reversed": row["pointsReversed"],
                "unrecovered": row["pointsUnrecovered"],
                "redeemed": row["pointsRedeemed"],
                "returned": row["pointsReturned"],
                "expired": row["pointsExpired"],
                "adjusted": row["pointsAdjusted"],
                "closing": row["pointsOutstanding"],
                "liability": str(liability),
                "expected_breakage": f"{rate:.4f}",
                "liability_after_breakage": str((liability * (1 - rate)).quantize(Decimal("0.01"))),
                "currency": row["liability"]["currency"],
            }
        )
    return result


CSV_FIGURES = (
    ("members", "members"),
    ("new_members", "newMembers"),
    ("active_members", "activeMembers"),
    ("active_share", "activeShare"),
    ("purchasers", "purchasers"),
    ("returning_share", "returningShare"),
    ("orders", "orders"),
    ("purchase_frequency", "purchaseFrequency"),
    ("points_issued", "pointsIssued"),
    ("points_released", "pointsReleased"),
    ("points_redeemed", "pointsRedeemed"),
    ("points_expired", "pointsExpired"),
    ("points_outstanding", "pointsOutstanding"),
    ("redemption_rate", "redemptionRate"),
    ("breakage", "breakage"),
    ("nps", "nps"),
    ("nps_answers", "npsAnswers"),
    ("guest_orders", "guestOrders"),
    ("guest_purchasers", "guestPurchasers"),
    ("guest_purchase_frequency", "guestPurchaseFrequency"),
)


def render_csv(answer: Mapping[str, Any]) -> str:
    """Every group's row of every month: the figures, and each currency's orders value and average."""
    rows = answer["months"]
    currencies = sorted({c for row in rows for c in row.get("orderValue", {})})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    money = [
        f"{what}_{c}"
        for c in currencies
        for what in ("order_value", "average_order_value", "guest_average_order_value")
    ]
    writer.writerow(["month", "group", *(name for name, _ in CSV_FIGURES), *money, "liability", "liability_currency"])
    for row in rows:
        cells = [row["month"], row["group"], *(_cell(row.get(key)) for _, key in CSV_FIGURES)]
        for c in currencies:
            cells += [
                row.get("orderValue", {}).get(c, ""),
                row.get("averageOrderValue", {}).get(c, ""),
                row.get("guestAverageOrderValue", {}).get(c, ""),
            ]
        liability = row.get("liability") or {}
        writer.writerow([*cells, liability.get("amount", ""), liability.get("currency", "")])
    return out.getvalue()


def render_roll_forward_csv(answer: Mapping[str, Any]) -> str:
    lines = roll_forward(answer)
    out = io.StringIO()
    if lines:
        writer = csv.DictWriter(out, fieldnames=list(lines[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
    return out.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value


@dataclass(frozen=True)
class ReportFiles:
    """A month's report as written: the HTML, where each file is kept, and the figures' rows (for the CRM)."""

    month: str
    html: bytes
    locations: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    currency: str


@dataclass
class MonthlyReport:
    """The report of the 12 months up to a month, written to the report store: the HTML and both CSV files under
    ``reports/<YYYY-MM>/`` (the monthly schedule writes the month just ended; again replaces it)."""

    figures: KpiFigures
    store: ReportStore
    tiers: Sequence[str]

    def write(self, month: str) -> ReportFiles:
        first = shift_month(month, -11)
        answers = self.figures.answers(first, month, ("segment", "tier"))
        by_segment, by_tier = answers["segment"], answers["tier"]
        html = render_html(by_segment, by_tier, self.tiers).encode()
        files = (
            ("loyalty-report.html", html, "text/html; charset=utf-8"),
            ("loyalty-figures.csv", render_csv(by_segment).encode(), "text/csv; charset=utf-8"),
            (
                "loyalty-points-roll-forward.csv",
                render_roll_forward_csv(by_segment).encode(),
                "text/csv; charset=utf-8",
            ),
        )
        locations = tuple(self.store.put(f"reports/{month}/{name}", body, kind) for name, body, kind in files)
        rows = tuple(row for answer in (by_segment, by_tier) for row in answer["months"] if row["month"] == month)
        return ReportFiles(month, html, locations, rows, by_segment["reportingCurrency"])
