"""The embedded stack: template.yaml's resources and the real handlers, on this machine.

DynamoDB Local holds the tables, moto in server mode the queues and secrets. The handlers run in this
process with the event shapes AWS sends: a gateway turns HTTP requests into HTTP API v2 events, and a
poller per SQS event source hands batches to its function, deletes what succeeded and lets the
`batchItemFailures` come back (and, past `maxReceiveCount`, go to the dead-letter queue). Handlers find
everything through AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB and the variables template.yaml gives them.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from moto.server import ThreadedMotoServer

from infra.local.dynamodb_local import DynamoDBLocal
from infra.local.template import create_table_kwargs, load_template

REGION = "eu-north-1"
ACCOUNT = "123456789012"
DEV_SECRETS = {  # development defaults; override with the environment variables of the same name
    "SHOPIFY_WEBHOOK_SECRET": "dev-shopify-webhook-secret",
    "WOOCOMMERCE_WEBHOOK_SECRET": "dev-woocommerce-webhook-secret",
}
SECRET_ENV = {
    "ShopifyWebhookSecret": "SHOPIFY_WEBHOOK_SECRET",
    "WooCommerceWebhookSecret": "WOOCOMMERCE_WEBHOOK_SECRET",
}
TEXT_TYPES = ("json", "text/", "xml", "x-www-form-urlencoded")
REDELIVERY_SECONDS = 1  # a failed message stays invisible this long here (AWS: the visibility timeout)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    route_key: str
    function: str


@dataclass
class QueueSource:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int


@dataclass
class Ports:
    gateway: int = int(os.environ.get("LOYALTY_GATEWAY_PORT", "3000"))
    dynamodb: int = int(os.environ.get("LOYALTY_DYNAMODB_PORT", "8000"))
    moto: int = int(os.environ.get("LOYALTY_MOTO_PORT", "5000"))


def lambda_context(function_name: str, timeout_seconds: int = 30) -> SimpleNamespace:
    deadline = time.monotonic() + timeout_seconds
    return SimpleNamespace(
        function_name=function_name,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}",
        memory_limit_in_mb=512,
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{function_name}",
        log_stream_name="local",
        get_remaining_time_in_millis=lambda: int(max(0.0, deadline - time.monotonic()) * 1000),
    )


@dataclass
class Stack:
    ports: Ports = field(default_factory=Ports)
    secrets: dict[str, str] = field(default_factory=dict)
    quiet: bool = True

    def __post_init__(self) -> None:
        self.template = load_template()
        self.resources: dict[str, dict[str, Any]] = self.template["Resources"]
        self.names: dict[str, str] = {}  # logical id -> what !Ref gives (table name, queue URL, secret ARN)
        self.arns: dict[str, str] = {}
        self.handlers: dict[str, Handler] = {}
        self.timeouts: dict[str, int] = {}
        self.routes: list[Route] = []
        self.queue_sources: list[QueueSource] = []
        self._stopping = threading.Event()
        self._sent = threading.Event()  # set when an in-process handler sends to SQS: wakes the pollers
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._dynamodb: DynamoDBLocal | None = None
        self._moto: ThreadedMotoServer | None = None
        self._gateway: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ URLs

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def dynamodb_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.dynamodb}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.moto}"

    # ------------------------------------------------------------ life cycle

    def start(self) -> Stack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's own request log
        for name, default in DEV_SECRETS.items():
            self.secrets.setdefault(name, os.environ.get(name, default))
        self._dynamodb = DynamoDBLocal(port=self.ports.dynamodb)
        self._dynamodb.start()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.ports.moto, verbose=False)
        self._moto.start()
        os.environ.update(
            AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=self.moto_url,
            AWS_ENDPOINT_URL_DYNAMODB=self.dynamodb_url,
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        session = boto3._get_default_session()  # the handlers' clients come from it, so they carry this hook
        for operation in ("SendMessage", "SendMessageBatch"):
            session.events.register(f"after-call.sqs.{operation}", lambda **_: self._sent.set())
        self._create_resources()
        self._load_functions()
        self._start_gateway()
        for source in self.queue_sources:
            thread = threading.Thread(target=self._poll, args=(source,), name=f"sqs-{source.function}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._sent.set()
        if self._gateway is not None:
            self._gateway.shutdown()
            self._gateway.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._moto is not None:
            self._moto.stop()
        if self._dynamodb is not None:
            self._dynamodb.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ resources from template.yaml

    def _of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def _create_resources(self) -> None:
        dynamodb = boto3.client("dynamodb", endpoint_url=self.dynamodb_url)
        for logical_id in self._of_type("AWS::DynamoDB::Table"):
            name = f"{logical_id}-local"
            kwargs = create_table_kwargs(name, logical_id)
            if name not in dynamodb.list_tables()["TableNames"]:
                dynamodb.create_table(**kwargs)
            self.names[logical_id] = name
        sqs = boto3.client("sqs")
        queues = self._of_type("AWS::SQS::Queue")
        # dead-letter queues first: the others name them in their RedrivePolicy
        for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
            props = queues[logical_id].get("Properties", {})
            attributes = {
                key: str(props[key]) for key in ("VisibilityTimeout", "MessageRetentionPeriod") if key in props
            }
            if "RedrivePolicy" in props:
                policy = props["RedrivePolicy"]
                target = policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": self.arns[target], "maxReceiveCount": policy["maxReceiveCount"]}
                )
            url = sqs.create_queue(QueueName=logical_id, Attributes=attributes)["QueueUrl"]
            self.names[logical_id] = url
            self.arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        secrets = boto3.client("secretsmanager")
        for logical_id in self._of_type("AWS::SecretsManager::Secret"):
            value = self.secrets[SECRET_ENV[logical_id]] if logical_id in SECRET_ENV else uuid.uuid4().hex
            self.names[logical_id] = secrets.create_secret(Name=logical_id, SecretString=value)["ARN"]

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            if ref in self.names:
                return self.names[ref]
            return self.template.get("Parameters", {})[ref]["Default"]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.arns[logical_id] if attribute == "Arn" else logical_id
        return value

    def _load_functions(self) -> None:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        environment = dict(globals_.get("Environment", {}).get("Variables", {}))
        for logical_id, resource in self._of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            environment.update(props.get("Environment", {}).get("Variables", {}))
            module_name = props["CodeUri"].strip("/").replace("/", ".") + "." + props["Handler"].rsplit(".", 1)[0]
            module = importlib.import_module(module_name)
            self.handlers[logical_id] = getattr(module, props["Handler"].rsplit(".", 1)[1])
            self.timeouts[logical_id] = int(props.get("Timeout", globals_.get("Timeout", 30)))
            for event in props.get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    path = event["Properties"]["Path"]
                    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
                    method = event["Properties"]["Method"].upper()
                    self.routes.append(Route(method, pattern, f"{method} {path}", logical_id))
                elif event["Type"] == "SQS":
                    queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                    self.queue_sources.append(
                        QueueSource(
                            logical_id, self.names[queue], self.arns[queue], int(event["Properties"]["BatchSize"])
                        )
                    )
        os.environ.update({key: str(self._resolve(value)) for key, value in environment.items()})

    # ------------------------------------------------------------ HTTP API gateway

    def invoke_http(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        for route in self.routes:
            match = route.pattern.match(split.path)
            if match and route.method == method:
                break
        else:
            return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
        lowered = {name.lower(): value for name, value in headers.items()}
        content_type = lowered.get("content-type", "")
        text = any(kind in content_type for kind in TEXT_TYPES)
        try:
            body_text, encoded = (body.decode("utf-8"), False) if text else (base64.b64encode(body).decode(), True)
        except UnicodeDecodeError:
            body_text, encoded = base64.b64encode(body).decode(), True
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        now = time.time()
        event = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": split.path,
            "rawQueryString": split.query,
            "headers": lowered,
            "queryStringParameters": query or None,
            "pathParameters": match.groupdict() or None,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "local",
                "domainName": f"127.0.0.1:{self.ports.gateway}",
                "domainPrefix": "127",
                "http": {
                    "method": method,
                    "path": split.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": lowered.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route.route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": body_text if body else None,
            "isBase64Encoded": encoded if body else False,
        }
        response = self.handlers[route.function](event, lambda_context(route.function, self.timeouts[route.function]))
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        return int(response["statusCode"]), dict(response.get("headers") or {}), data

    def _start_gateway(self) -> None:
        stack = self

        class GatewayHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers: dict[str, str] = {}
                for name, value in self.headers.items():
                    key = name.lower()
                    headers[key] = f"{headers[key]},{value}" if key in headers else value
                status, response_headers, data = stack.invoke_http(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in response_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                if not stack.quiet:
                    super().log_message(format, *args)

        self._gateway = ThreadingHTTPServer(("127.0.0.1", self.ports.gateway), GatewayHandler)
        thread = threading.Thread(target=self._gateway.serve_forever, name="gateway", daemon=True)
        thread.start()

    # ------------------------------------------------------------ SQS event sources

    def _poll(self, source: QueueSource) -> None:
        sqs = boto3.client("sqs")
        while not self._stopping.is_set():
            self._sent.clear()
            response = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=source.batch_size,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,  # moto's long poll spins: wait for a send (or redelivery time) instead
            )
            messages = response.get("Messages", [])
            if not messages:
                self._sent.wait(REDELIVERY_SECONDS / 2)
                continue
            with self._busy_lock:
                self._busy += 1
            try:
                self._deliver(sqs, source, messages)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _deliver(self, sqs: Any, source: QueueSource, messages: list[dict[str, Any]]) -> None:
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": message.get("MessageAttributes", {}),
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": source.queue_arn,
                    "awsRegion": REGION,
                }
                for message in messages
            ]
        }
        try:
            response = self.handlers[source.function](
                event, lambda_context(source.function, self.timeouts[source.function])
            )
            failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        except Exception:  # the whole invocation failed: as in AWS, every message comes back
            logging.getLogger(__name__).exception("%s failed; its batch will be redelivered", source.function)
            failed = {message["MessageId"] for message in messages}
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=source.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=REDELIVERY_SECONDS,
                )
            else:
                sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Wait until every event-source queue is empty and no batch is being handled."""
        sqs = boto3.client("sqs")
        deadline = time.monotonic() + timeout
        quiet_checks = 0
        while time.monotonic() < deadline:
            pending = 0
            for source in self.queue_sources:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=source.queue_url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                pending += sum(int(value) for value in attributes.values())
            with self._busy_lock:
                pending += self._busy
            quiet_checks = quiet_checks + 1 if pending == 0 else 0
            if quiet_checks >= 2:
                return
            time.sleep(0.02)
        raise TimeoutError(f"queues still busy after {timeout:.0f}s")

    def queue_url(self, logical_id: str) -> str:
        return self.names[logical_id]
