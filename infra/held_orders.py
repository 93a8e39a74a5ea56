"""List the orders held for review: beyond the programme's bounds (order_limits in infra/program.yaml), unapplied.

    python -m infra.held_orders

Reads the table named by LOYALTY_TABLE with the usual AWS credentials (or, with `make serve` running,
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 and LOYALTY_TABLE=LoyaltyTable-local). Each line: when it was
held, the shop, the order id, why, and the order's lines (no personal data: the order holds none).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from loyalty.adapters.dynamodb.directory import DynamoDBDirectory
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.ports.directory import Directory
from loyalty.settings import TableSettings, load_settings


def report(directory: Directory) -> list[str]:
    lines = []
    for held in directory.held_for_review():
        order = held.order
        items = ", ".join(f"{line.quantity} x {line.unit_price} {order.currency}" for line in order.lines)
        lines.append(
            f"{held.held_at:%Y-%m-%d %H:%M} {order.shop} order {order.order_id} placed {order.placed_at:%Y-%m-%d}:"
            f" {held.reason} [{items}]"
        )
    return lines or ["no orders are held for review"]


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    bind_table(load_settings(TableSettings).table)
    print("\n".join(report(DynamoDBDirectory())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
