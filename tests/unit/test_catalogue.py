"""Seeding the product catalogue from a shop's CSV export, on the directory's fake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from loyalty.fakes import Fakes
from loyalty.shop.catalogue import seed_catalogue

WOO_EXPORT = (
    "\ufeffID,Type,SKU,Name,Published,Categories,Tags\n"
    '101,simple,TR-1,Trail shoe,1,"Shoes > Running, Outdoor","trail, new-arrivals"\n'
    '102,simple,SO-3,"Wool socks, 3-pack",1,Accessories,\n'
    ",simple,NOID,No id,1,Shoes,\n"
)
SHOPIFY_EXPORT = 'ID,Handle,Title,Type,Tags\n7,boot,Hiking boot,Boots,"outdoor, Winter"\n,sock,No id,Socks,\n'


def test_a_woocommerce_export_seeds_categories_paths_split_and_tags_included(fakes: Fakes, tmp_path: Path) -> None:
    # Given a WooCommerce product export (with its byte-order mark and hierarchical categories)
    export = tmp_path / "products.csv"
    export.write_text(WOO_EXPORT, encoding="utf-8")
    # When it is seeded
    saved = seed_catalogue(fakes.directory, "woocommerce:shop.example", export, datetime.now(UTC))
    # Then each product with an id has its categories, case-folded, paths split, tags included
    assert saved == 2
    assert fakes.directory.categories_for("woocommerce:shop.example", ["101", "102", "999"]) == {
        "101": ("shoes", "running", "outdoor", "trail", "new-arrivals"),
        "102": ("accessories",),
    }


def test_a_shopify_style_export_takes_its_type_and_tags_and_skips_rows_without_an_id(
    fakes: Fakes, tmp_path: Path
) -> None:
    export = tmp_path / "products.csv"
    export.write_text(SHOPIFY_EXPORT, encoding="utf-8")
    assert seed_catalogue(fakes.directory, "shopify:shop", export, datetime.now(UTC)) == 1
    assert fakes.directory.categories_for("shopify:shop", ["7"]) == {"7": ("boots", "outdoor", "winter")}
