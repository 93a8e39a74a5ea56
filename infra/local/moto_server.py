"""moto in server mode for the embedded stack: `python -m infra.local.moto_server -H 127.0.0.1 -p PORT`.

The same application as `python -m moto.server` (moto's dispatcher and its backends), served by waitress rather
than werkzeug's development server, with three per-request costs taken out that made moto the busiest process of
the local pipeline (measured in the README's section on the embedded stack):

- werkzeug's server closes the connection after every answer, so each call was a new connection and a new thread;
  waitress keeps connections alive and answers from a pool of threads (enough for every long poll at once);
- moto works out which backend serves a request again for every request, under one lock, listing its own modules
  from the disk each time; here the answer is remembered per host, signing scope, target header and the path's
  first segment (what moto decides by for the services the stack uses: SQS, SES v2, SNS, Secrets Manager), so
  the same kind of request always finds the same backend;
- receiving an SQS message checks its retention period by asking the queue for every attribute, which counts every
  message in the queue, for each message received; here the retention period is read from the queue directly.

Nothing else changes: every request reaches the same backend method with the same arguments.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from flask import Flask
from moto.core.utils import unix_time
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs.models import Message, SQSBackend
from waitress import serve

THREADS = 64  # each SQS poller's long poll holds one while it waits
# every client of every instance keeps its connections open; past waitress's default of 100, new ones would wait
# unanswered until an idle one timed out
CONNECTIONS = 2000


class RememberingDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering the backend of each kind of signed request."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._known: dict[tuple[str, ...], Flask] = {}
        self._remembering = threading.Lock()

    def get_application(self, environ: dict[str, Any]) -> Flask:
        key = _kind_of(environ)
        if key is None:
            return super().get_application(environ)
        known = self._known.get(key)
        if known is None:
            known = super().get_application(environ)
            with self._remembering:
                self._known[key] = known
        return known


def _kind_of(environ: dict[str, Any]) -> tuple[str, ...] | None:
    """What moto chooses a signed request's backend by: the credential scope's region and service, the target
    header's service and the path's first segment (None: unsigned, or moto's own API; moto decides those itself)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    path = environ.get("PATH_INFO", "")
    if not auth.startswith("AWS4-HMAC-SHA256") or path.startswith(("/moto-api", "/latest/")):
        return None
    try:
        _, _, region, service, _ = auth.split(",")[0].split()[1].split("/")
    except (IndexError, ValueError):
        return None
    target = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]
    return (environ.get("HTTP_HOST", ""), region, service, target, path.split("/", 2)[1] if "/" in path else "")


def _within_retention(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    queue = backend.get_queue(queue_name)
    return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time())  # type: ignore[attr-defined,operator]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own server: the URLs it makes carry the port
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # at once: nothing to keep, and long polls may be waiting
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    serve(
        RememberingDispatcher(),
        host=args.host,
        port=args.port,
        threads=THREADS,
        connection_limit=CONNECTIONS,
        ident="moto",
    )


if __name__ == "__main__":
    main()
