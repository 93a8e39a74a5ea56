"""`make report`: the programme's monthly report, from GET /kpis, as an HTML file with its charts inside and the
same figures as CSV (and finance's roll-forward of points).

Asks the member API of the running embedded stack (`make serve`, http://127.0.0.1:3000) unless --api names
another; a deployed API (not on loopback) is asked with AWS Signature Version 4, with the credentials boto3
finds. The months are the 12 up to the current one unless --from and --to say otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loyalty.kpis.flows import shift_month
from loyalty.kpis.report import render_csv, render_html, render_roll_forward_csv
from loyalty.programme.rules import load_program
from loyalty.programme.tiers import month_key

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def fetch(api: str, query: dict[str, str], region: str | None = None) -> dict[str, Any]:
    """GET /kpis with ``query``; signed with SigV4 (execute-api) unless the API is on loopback."""
    url = f"{api.rstrip('/')}/kpis?{urllib.parse.urlencode(query)}"
    headers: dict[str, str] = {}
    if urllib.parse.urlsplit(url).hostname not in LOOPBACK:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise SystemExit("no AWS credentials found to sign the request to the deployed API")
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(credentials, "execute-api", region or session.region_name or "eu-north-1").add_auth(request)
        headers = dict(request.headers)
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def write(folder: Path, by_segment: dict[str, Any], by_tier: dict[str, Any], tiers: list[str]) -> Path:
    """The report and its CSV files in ``folder``; the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "loyalty-report.html"
    report.write_text(render_html(by_segment, by_tier, tiers), encoding="utf-8")
    (folder / "loyalty-figures.csv").write_text(render_csv(by_segment), encoding="utf-8")
    (folder / "loyalty-points-roll-forward.csv").write_text(render_roll_forward_csv(by_segment), encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    rules = load_program()
    this_month = month_key(rules.local_date(datetime.now(UTC)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default=os.environ.get("LOYALTY_API_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--from", dest="first", default=shift_month(this_month, -11), help="YYYY-MM")
    parser.add_argument("--to", dest="last", default=this_month, help="YYYY-MM")
    parser.add_argument("--out", default="report", help="the folder to write to (report/)")
    parser.add_argument("--region", default=None, help="the deployed API's region, for signing")
    args = parser.parse_args(argv)
    answers = []
    for by in ("segment", "tier"):
        try:
            answers.append(fetch(args.api, {"from": args.first, "to": args.last, "by": by}, args.region))
        except urllib.error.HTTPError as error:
            print(f"GET /kpis answered {error.code}: {error.read().decode(errors='replace')}", file=sys.stderr)
            return 1
        except (urllib.error.URLError, OSError) as error:
            print(f"cannot reach the member API at {args.api} ({error}); is `make serve` running?", file=sys.stderr)
            return 1
    report = write(Path(args.out), answers[0], answers[1], [tier.name for tier in rules.tiers])
    print(f"{report.resolve()} ({args.first} to {args.last}), with loyalty-figures.csv and the points roll-forward")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
