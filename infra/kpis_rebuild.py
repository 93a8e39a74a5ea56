"""`python -m infra.kpis_rebuild`: the monthly figures recomputed from the ledger for audit, and compared with the
figures the stream counted; with --write, the counted programme figures of the differing months are replaced by
the recomputed ones (and those months closed again, in order).

Reads the whole table once (a parallel Scan of its entries, members, NPS answers and offers: an audit, not the
counting, which never scans) from the table the running embedded stack uses (`make serve` prints the
LOYALTY_TABLE and AWS_ENDPOINT_URL_DYNAMODB to set) or a deployed one (--table, with the credentials boto3
finds). Exits 1 when a month differs (after writing, with --write).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore, scan_ledger
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.kpis.audit import audited, differences, recompute
from loyalty.kpis.closing import KpiClosing, months_between
from loyalty.programme.rules import load_program


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default=os.environ.get("LOYALTY_TABLE"), help="the table (LOYALTY_TABLE)")
    parser.add_argument("--from", dest="first", help="YYYY-MM (the first month with figures if left out)")
    parser.add_argument("--to", dest="last", help="YYYY-MM (the last month with figures if left out)")
    parser.add_argument("--write", action="store_true", help="replace the differing months' counted figures")
    parser.add_argument("--segments", type=int, default=4, help="parallel Scan segments (4)")
    args = parser.parse_args(argv)
    if not args.table:
        print("which table? --table NAME or LOYALTY_TABLE", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    bind_table(args.table, region=region, host=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"))
    rules = load_program()
    print(f"reading {args.table} (entries, members, NPS answers) ...", flush=True)
    found = scan_ledger(args.segments)
    recomputed = recompute(rules, found.entries, found.enrolled, found.answers, found.offers, found.exposures)
    known = sorted(recomputed)
    if not known:
        print("no figures to audit: the table has no entries, members or answers")
        return 0
    months = months_between(args.first or known[0], args.last or known[-1])
    store = DynamoDBKpiStore()
    differing = differences(store, recomputed, months)
    print(
        f"{len(found.entries):,} entries, {len(found.enrolled):,} members, {len(found.answers):,} NPS answers, "
        f"{len(found.offers):,} offer decisions, {len(found.exposures):,} measured offers; {len(months)} months"
    )
    for difference in differing:
        print(f"  differs: {difference}")
    if not differing:
        print("every month's counted figures equal the ledger's: OK")
        return 0
    if args.write:
        closing = KpiClosing(store)
        for difference in differing:
            again = audited(recomputed.get(difference.month, {}))
            store.set_programme(difference.month, {name: again.get(name, 0) for name in {*difference.counted, *again}})
        for month in months:  # the closing figures follow from the months before: closed again, in order
            if store.month(month).get("close") is not None:
                closing.close(month)
        print(f"{len(differing)} months rewritten from the ledger, and their closes after them")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
