"""Seed the product catalogue from a shop's product CSV export, so orders earn category multipliers from day one.

    python -m infra.seed_catalogue --shop woocommerce:shop.example.com products.csv

Writes to the table named by LOYALTY_TABLE with the usual AWS credentials (or, with `make serve` running,
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 and LOYALTY_TABLE=LoyaltyTable-local). Columns are those of
a WooCommerce product export (ID, Name, Categories, Tags) or a plain product_id, title, categories, tags.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from loyalty.adapters.dynamodb.directory import DynamoDBDirectory
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.settings import TableSettings, load_settings
from loyalty.shop.catalogue import seed_catalogue


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shop", required=True, help="the shop as events name it, e.g. shopify:my-shop.myshopify.com")
    parser.add_argument("csv", type=Path, help="the product export")
    args = parser.parse_args(argv)
    bind_table(load_settings(TableSettings).table)
    saved = seed_catalogue(DynamoDBDirectory(), args.shop, args.csv, datetime.now(UTC))
    print(f"{saved} products saved to the catalogue of {args.shop}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
