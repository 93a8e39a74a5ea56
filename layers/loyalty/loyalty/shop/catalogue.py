"""Seeding the product catalogue from a shop's product CSV export, before the product webhooks have told us."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from loyalty.ports.directory import Directory
from loyalty.programme.orders import casefold_categories


def seed_catalogue(directory: Directory, shop: str, csv_path: Path, at: datetime) -> int:
    """Seed the catalogue from a product CSV export. Columns (case-insensitive): ``ID`` or ``product_id``;
    ``Name`` or ``Title``; ``Categories`` (comma-separated, ``A > B`` paths), or where there is none ``Type``;
    ``Tags``. Returns the number of products saved."""
    saved = 0
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            fields = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
            product_id = fields.get("id") or fields.get("product_id")
            if not product_id:
                continue
            names: list[str] = []
            # WooCommerce's Type is simple/variable, not a category; Shopify-style exports have only Type
            columns = ("categories", "tags") if "categories" in fields else ("type", "tags")
            for column in columns:
                for part in fields.get(column, "").split(","):
                    names += [segment for segment in part.split(">") if segment.strip()]
            categories = tuple(dict.fromkeys(casefold_categories(tuple(names))))
            title = fields.get("name") or fields.get("title") or product_id
            saved += directory.save_product(shop, product_id, title, categories, at)
    return saved
