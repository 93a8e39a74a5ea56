"""`make outbox`: what the embedded stack sent, as moto holds it: every e-mail (SES v2) and SMS (SNS).

Reads moto's state page (`/moto-api/data.json`) on the stack's moto port (LOYALTY_MOTO_PORT, 5000 by default,
or --moto-url). Addresses and numbers are shown as moto holds them: this is a local stack with made-up members.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from html import unescape
from typing import Any


def sent(moto_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(e-mails, SMS) moto has recorded, oldest first."""
    with urllib.request.urlopen(f"{moto_url.rstrip('/')}/moto-api/data.json", timeout=10) as response:
        state = json.loads(response.read())
    emails = state.get("ses", {}).get("Message", [])
    sms = state.get("sns", {}).get("SMS", [])
    return emails, sms


def as_text(html: str) -> str:
    """An HTML e-mail body as plain lines, for a terminal."""
    text = re.sub(r"<(br|/p|/h\d|/li)\s*/?>", "\n", html, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    return "\n".join(line.strip() for line in unescape(text).splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moto-url", default=f"http://127.0.0.1:{os.environ.get('LOYALTY_MOTO_PORT', '5000')}")
    parser.add_argument("--last", type=int, default=20, help="show the last N of each (default 20)")
    parser.add_argument("--full", action="store_true", help="print each e-mail's body")
    args = parser.parse_args(argv)
    try:
        emails, messages = sent(args.moto_url)
    except (urllib.error.URLError, OSError) as error:
        print(f"cannot reach moto at {args.moto_url} ({error}); is `make serve` running?", file=sys.stderr)
        return 1
    print(f"E-mails sent: {len(emails)}")
    for email in emails[-args.last :]:
        to = ", ".join(email.get("destinations", {}).get("ToAddresses", []))
        print(f'  {email.get("id", "")[:12]}  to {to}  "{email.get("subject", "")}"')
        if args.full:
            print("    " + as_text(email.get("body", "")).replace("\n", "\n    "))
    print(f"SMS sent: {len(messages)}")
    for sms in messages[-args.last :]:
        print(f'  {sms.get("message_id", "")[:12]}  to {sms.get("phone_number", "")}  "{sms.get("message", "")}"')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
