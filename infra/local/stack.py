"""The embedded stack: template.yaml's resources and the real handlers, on this machine.

DynamoDB Local holds the tables, moto in server mode the queues and secrets. The handlers run in this
process with the event shapes AWS sends: a gateway turns HTTP requests into HTTP API v2 events, and the
event source mappings (infra/local/event_sources.py) poll the queues and the table's stream as Lambda does.
Handlers find everything through AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB and the variables template.yaml
gives them. The batching windows can run on a shorter time scale (LOCAL_TIME_SCALE) so that a driver need not
wait ten seconds for each CRM push.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import boto3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.local.dynamodb_local import REPO_ROOT, DynamoDBLocal
from infra.local.event_sources import (
    Activity,
    QueuePoller,
    QueueSource,
    StreamFanOut,
    StreamPoller,
    StreamReader,
    StreamSource,
)
from infra.local.instances import (
    ACCOUNT,
    REGION,
    Function,
    FunctionError,
    SharedClock,
    calls_so_far,
    count_calls,
    count_sends,
    lambda_context,
)
from infra.local.processes import ensure_port_free, start_process, stop_processes
from infra.local.salesforce_emulator import SalesforceEmulator
from infra.local.shopify_admin import ShopifyAdmin
from infra.local.storefront import Storefront
from infra.local.template import create_table_kwargs, load_template
from infra.local.woocommerce_rest import WooCommerceRest
from loyalty.clock import now as programme_now
from loyalty.observability import mask_email
from loyalty.programme.rewards import load_rewards
from loyalty.programme.rules import load_program

DEV_SECRETS = {  # development defaults; override with the environment variables of the same name
    "SHOPIFY_WEBHOOK_SECRET": "dev-shopify-webhook-secret",
    "WOOCOMMERCE_WEBHOOK_SECRET": "dev-woocommerce-webhook-secret",
    "SALESFORCE_CALLOUT_SECRET": "dev-salesforce-callout-secret",
    "SALESFORCE_OUTBOUND_TOKEN": "dev-salesforce-outbound-token",
}
SECRET_ENV = {
    "ShopifyWebhookSecret": "SHOPIFY_WEBHOOK_SECRET",
    "WooCommerceWebhookSecret": "WOOCOMMERCE_WEBHOOK_SECRET",
    "SalesforceCalloutSecret": "SALESFORCE_CALLOUT_SECRET",
    "SalesforceOutboundToken": "SALESFORCE_OUTBOUND_TOKEN",
}
OUTBOUND_FIELDS = (  # what the org's Outbound Message on Contact sends (infra/salesforce/README.md)
    "Email",
    "MobilePhone",
    "Birthdate",
    "HasOptedOutOfEmail",
    "FirstName",
    "LastName",
    "Loyalty_Member_Id__c",
    "Loyalty_SMS_Opt_In__c",
    "Loyalty_Locale__c",
)
RECONCILE_AFTER_SECONDS = 3.0  # nothing at all happened for this long, yet messages are counted: ask SQS
LOCAL_TIME_SCALE = 0.01  # the demo's, serve's and the tests' batching windows: the CRM sync's 10 s is 0.1 s
LOCAL_JOBS_PATH = "/_local/jobs/"  # not in AWS: schedules run jobs there; here they run on demand
TEXT_TYPES = ("json", "text/", "xml", "x-www-form-urlencoded")

Handler = Callable[[dict[str, Any], Any], Any]
DEFAULT_CONCURRENCY = 2  # instances per function at most (Lambda's reserved concurrency, here)
STOP_GRACE_SECONDS = 2.0  # on stop, a busy instance may finish the event in hand this long, then it is killed
PORT_VARIABLES = {  # Ports' field -> (what listens there, the variable that moves it)
    "gateway": ("the gateway", "LOYALTY_GATEWAY_PORT"),
    "dynamodb": ("DynamoDB Local", "LOYALTY_DYNAMODB_PORT"),
    "moto": ("moto", "LOYALTY_MOTO_PORT"),
    "salesforce": ("the Salesforce emulator", "LOYALTY_SALESFORCE_PORT"),
    "shopify": ("the Shopify Admin API emulator", "LOYALTY_SHOPIFY_PORT"),
    "woocommerce": ("the WooCommerce REST API emulator", "LOYALTY_WOOCOMMERCE_PORT"),
}


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    route_key: str
    function: str


@dataclass
class Schedule:
    name: str  # the event's name in template.yaml
    function: str
    expression: str
    input: dict[str, Any]


@dataclass
class Ports:
    gateway: int = int(os.environ.get("LOYALTY_GATEWAY_PORT", "3000"))
    dynamodb: int = int(os.environ.get("LOYALTY_DYNAMODB_PORT", "8000"))
    moto: int = int(os.environ.get("LOYALTY_MOTO_PORT", "5000"))
    salesforce: int = int(os.environ.get("LOYALTY_SALESFORCE_PORT", "8600"))
    shopify: int = int(os.environ.get("LOYALTY_SHOPIFY_PORT", "0"))  # 0: any free port
    woocommerce: int = int(os.environ.get("LOYALTY_WOOCOMMERCE_PORT", "0"))


class MotoServer:
    """moto in server mode (infra/local/moto_server.py), in its own process (so it does not share the handlers'
    interpreter lock)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def start(self, timeout: float = 30.0) -> None:
        self._process = start_process(
            [sys.executable, "-m", "infra.local.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not listen on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        stop_processes([self._process])
        self._process = None


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away (as callers do while the stack stops); nothing to report
        super().handle_error(request, client_address)


SECRET_PARAMETERS = ("token", "t")  # the Outbound Message's token; an unsubscribe link's signature
_PHONE_VALUE = re.compile(r"\+?[\d\s().-]{7,}")
_DATE_VALUE = re.compile(r"\d{4}-\d{2}-\d{2}")


def masked_request_line(request_line: str) -> str:
    """The request line as the access log shows it: e-mail addresses (anywhere) and phone numbers (as query values)
    masked as the product's logs mask them (``GET /members?email=a***@e***.com HTTP/1.1``), secrets (the Outbound
    Message's token, an unsubscribe link's signature) hidden."""
    method, _, rest = request_line.partition(" ")
    target, _, version = rest.partition(" ")
    path, _, query = target.partition("?")
    path = mask_email(unquote(path)) or ""
    if not query:
        return f"{method} {path} {version}".rstrip()
    shown = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in SECRET_PARAMETERS:
            value = "***"
        elif "@" in value:
            masked = mask_email(value)
            value = masked if masked != value else "***"
        elif _PHONE_VALUE.fullmatch(value.strip()) and not _DATE_VALUE.fullmatch(value.strip()):
            value = "***" + re.sub(r"\D", "", value)[-2:]  # as mask_phone shows a number
        shown.append(f"{name}={value}")
    return f"{method} {path}?{'&'.join(shown)} {version}".rstrip()


def _caller() -> str:
    """Who in this process makes an AWS call: the event sources' pollers, or the driver (a demo, a test)."""
    name = threading.current_thread().name
    return "(event sources)" if name.startswith(("sqs-", "stream-")) else "(driver)"


@dataclass
class Stack:
    ports: Ports = field(default_factory=Ports)
    secrets: dict[str, str] = field(default_factory=dict)
    quiet: bool = True
    # Batching windows run this many times their template values (demo, serve and most tests: 0.01, so the CRM
    # sync's 10-second window is 0.1 s); 1.0 is AWS's timing.
    time_scale: float = 1.0
    # The programme's clock for every instance (the demo's simulated year); None: the real time
    clock: SharedClock | None = None
    concurrency: dict[str, int] = field(default_factory=dict)  # function -> instances at most (else 2)
    environment: dict[str, str] = field(default_factory=dict)  # set for every function, over template.yaml's

    def __post_init__(self) -> None:
        self.template = load_template()
        self.resources: dict[str, dict[str, Any]] = self.template["Resources"]
        self.names: dict[str, str] = {}  # logical id -> what !Ref gives (table name, queue URL, secret ARN)
        self.arns: dict[str, str] = {}
        self.handlers: dict[str, Function | Handler] = {}  # a test may put a stand-in handler here
        self.timeouts: dict[str, int] = {}
        self.routes: list[Route] = []
        self.queue_sources: list[QueueSource] = []
        self.stream_sources: list[StreamSource] = []
        self.schedules: list[Schedule] = []
        self.sns_subscribers: dict[str, list[str]] = {}  # topic logical id -> functions subscribed
        self._function_locks: dict[str, threading.Lock] = {}
        self.activity = Activity()
        self.calls: Counter[str] = Counter()  # "function|service.Operation" -> AWS calls made, this process's too
        self._stop_counting: Callable[[], None] = lambda: None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stream_pollers: list[StreamPoller] = []
        self._dynamodb: DynamoDBLocal | None = None
        self._moto: MotoServer | None = None
        self._gateway: GatewayServer | None = None
        # the org's clock is the programme's: in the demo, CRM users' edits happen in the simulated year
        self.salesforce = SalesforceEmulator(port=self.ports.salesforce, clock=programme_now)
        self.parameters: dict[str, str] = {"SalesforceOrgId": self.salesforce.organization_id}
        # the shops of infra/rewards.yaml, emulated: their Admin and REST APIs, with credentials of their own
        shops = list(load_rewards(load_program()).shops)
        shopify_domains = [s.partition(":")[2] for s in shops if s.startswith("shopify:")]
        self.shopify = ShopifyAdmin(tokens={domain: f"shpat_local_{uuid.uuid4().hex}" for domain in shopify_domains})
        # each Shopify shop's storefront: a customer login and the App Proxy to the member page, signed with the
        # shop's app secret (which the ShopCredentials secret gives the programme)
        self.storefronts = {
            domain: Storefront(domain, f"shpss_local_{uuid.uuid4().hex}", f"{self.gateway_url}/apps/loyalty")
            for domain in shopify_domains
        }
        self.woocommerce = WooCommerceRest(
            keys={
                s.partition(":")[2]: (f"ck_local_{uuid.uuid4().hex}", f"cs_local_{uuid.uuid4().hex}")
                for s in shops
                if s.startswith("woocommerce:")
            }
        )

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

    @property
    def salesforce_url(self) -> str:
        return self.salesforce.url

    def shop_credentials(self) -> dict[str, dict[str, str]]:
        """What the ShopCredentials secret holds here: each shop's credentials and its emulator's address."""
        credentials: dict[str, dict[str, str]] = {}
        for domain, token in self.shopify.tokens.items():
            url = f"{self.shopify.url}/shops/{domain}"
            app_secret = self.storefronts[domain].app_secret
            credentials[f"shopify:{domain}"] = {"accessToken": token, "apiUrl": url, "appSecret": app_secret}
        for host, (key, secret) in self.woocommerce.keys.items():
            url = f"{self.woocommerce.url}/shops/{host}"
            credentials[f"woocommerce:{host}"] = {"consumerKey": key, "consumerSecret": secret, "apiUrl": url}
        return credentials

    # ------------------------------------------------------------ life cycle

    def start(self) -> Stack:
        """Start everything, or nothing: a port already taken stops it before anything starts (PortInUseError,
        naming the port and its variable: the stack never talks to a server it did not start), and a failure or an
        interruption (Ctrl-C, or SIGTERM raised as KeyboardInterrupt) midway stops what had started."""
        for name, (what, variable) in PORT_VARIABLES.items():
            if getattr(self.ports, name):  # 0: any free port
                ensure_port_free(getattr(self.ports, name), what, variable)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's own request log
        for name, default in DEV_SECRETS.items():
            self.secrets.setdefault(name, os.environ.get(name, default))
        self._dynamodb = DynamoDBLocal(port=self.ports.dynamodb)
        self._dynamodb.start()
        self._moto = MotoServer(self.ports.moto)
        self._moto.start()
        self.salesforce.start()
        self.shopify.start(self.ports.shopify)
        self.woocommerce.start(self.ports.woocommerce)
        for storefront in self.storefronts.values():
            storefront.start()
        os.environ.update(
            AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=self.moto_url,
            AWS_ENDPOINT_URL_DYNAMODB=self.dynamodb_url,
            AWS_ENDPOINT_URL_DYNAMODB_STREAMS=self.dynamodb_url,
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        count_sends(boto3._get_default_session(), self.activity.sent)  # what drivers in this process send
        self._stop_counting = count_calls(self.calls, _caller)
        self._create_resources()
        self._sqs = boto3.client("sqs")
        self._load_functions()
        self._start_gateway()
        token = urlencode({"token": self.secrets["SALESFORCE_OUTBOUND_TOKEN"]})
        self.salesforce.configure_outbound(
            f"{self.gateway_url}/webhooks/salesforce/outbound?{token}",
            OUTBOUND_FIELDS,
            self.salesforce.integration_user_id,
        )
        self._start_pollers()

    def stop(self) -> None:
        """Stop everything within a few seconds, however busy: no new invocations; a busy instance may finish the
        event in hand for STOP_GRACE_SECONDS, then it is killed; then moto and DynamoDB Local (which ends the
        pollers' long polls and stream reads at once), the pollers, and the other servers."""
        self._stopping.set()
        self._wake_streams()
        self._stop_counting()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        functions = [handler for handler in self.handlers.values() if isinstance(handler, Function)]
        for function in functions:
            function.close()
        if self._gateway is not None:
            self._gateway.shutdown()
            self._gateway.server_close()
        for function in functions:
            function.stop(deadline)
        stop_processes([self._moto.process if self._moto else None, self._dynamodb.process if self._dynamodb else None])
        self._moto = self._dynamodb = None
        for thread in self._threads:  # daemons: one stuck in a call is left behind
            thread.join(timeout=max(0.0, deadline + 1.0 - time.monotonic()))
        self.salesforce.stop()
        self.shopify.stop()
        self.woocommerce.stop()
        for storefront in self.storefronts.values():
            storefront.stop()

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
                key: str(props[key])
                for key in ("VisibilityTimeout", "MessageRetentionPeriod", "MaximumMessageSize")
                if key in props
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
        sns = boto3.client("sns")
        for logical_id in self._of_type("AWS::SNS::Topic"):
            self.names[logical_id] = sns.create_topic(Name=logical_id)["TopicArn"]
        sesv2 = boto3.client("sesv2")
        for logical_id, resource in self._of_type("AWS::SES::ConfigurationSet").items():
            name = resource["Properties"]["Name"]
            sesv2.create_configuration_set(ConfigurationSetName=name)
            self.names[logical_id] = name
        for logical_id, resource in self._of_type("AWS::SES::EmailIdentity").items():
            identity = self._resolve(resource["Properties"]["EmailIdentity"])
            sesv2.create_email_identity(EmailIdentity=identity)  # moto: verified at once
            self.names[logical_id] = identity
        s3 = boto3.client("s3")
        for logical_id in self._of_type("AWS::S3::Bucket"):
            name = f"loyalty-{logical_id.lower()}-local"
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
            self.names[logical_id] = name
        secrets = boto3.client("secretsmanager")
        for logical_id in self._of_type("AWS::SecretsManager::Secret"):
            if logical_id == "SalesforceJwtSecret":
                value = self._salesforce_login()
            elif logical_id == "ShopCredentials":
                value = json.dumps(self.shop_credentials())
            else:
                value = self.secrets[SECRET_ENV[logical_id]] if logical_id in SECRET_ENV else uuid.uuid4().hex
            self.names[logical_id] = secrets.create_secret(Name=logical_id, SecretString=value)["ARN"]

    def _salesforce_login(self) -> str:
        """The JWT bearer login for the local org: a fresh key pair (the emulator accepts any signed assertion)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return json.dumps(
            {
                "consumer_key": "local-external-client-app",
                "private_key": pem,
                "username": "integration@loyalty.local",
                "login_url": self.salesforce.url,
            }
        )

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            if ref in self.names:
                return self.names[ref]
            if ref in self.parameters:
                return self.parameters[ref]
            return self.template.get("Parameters", {})[ref]["Default"]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.arns[logical_id] if attribute == "Arn" else logical_id
        if isinstance(value, dict) and "Fn::Sub" in value:
            return self._substitute(value["Fn::Sub"])
        return value

    def _substitute(self, text: str) -> str:
        """!Sub with what it means here: the HTTP API's URL is the local gateway's."""
        for api in self._of_type("AWS::Serverless::HttpApi"):
            deployed = f"https://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
            text = text.replace(deployed, self.gateway_url)
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(pseudo.get(m[1]) or self._resolve({"Ref": m[1]})), text)

    def _load_functions(self) -> None:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        shared = dict(globals_.get("Environment", {}).get("Variables", {}))
        everything: dict[str, str] = {}
        for logical_id, resource in self._of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            variables = {**shared, **props.get("Environment", {}).get("Variables", {})}
            environment = {key: str(self._resolve(value)) for key, value in variables.items()} | self.environment
            everything.update(environment)
            module_name = props["CodeUri"].strip("/").replace("/", ".") + "." + props["Handler"].rsplit(".", 1)[0]
            handler = f"{module_name}.{props['Handler'].rsplit('.', 1)[1]}"
            self.timeouts[logical_id] = int(props.get("Timeout", globals_.get("Timeout", 30)))
            self.handlers[logical_id] = Function(
                logical_id,
                handler,
                environment,
                self.timeouts[logical_id],
                self.concurrency_of(logical_id),
                self.clock,
                self.activity.sent,
                self.calls,
            )
            for event_name, event in props.get("Events", {}).items():
                if event["Type"] == "Schedule":
                    schedule = event["Properties"]
                    self.schedules.append(
                        Schedule(event_name, logical_id, schedule["Schedule"], json.loads(schedule.get("Input", "{}")))
                    )
                elif event["Type"] == "HttpApi":
                    path = event["Properties"]["Path"]
                    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
                    method = event["Properties"]["Method"].upper()
                    self.routes.append(Route(method, pattern, f"{method} {path}", logical_id))
                elif event["Type"] == "SNS":
                    topic = event["Properties"]["Topic"]["Ref"]
                    self.sns_subscribers.setdefault(topic, []).append(logical_id)
                elif event["Type"] == "DynamoDB":
                    self.stream_sources.append(self._stream_source(logical_id, event["Properties"]))
                elif event["Type"] == "SQS":
                    self.queue_sources.append(self._queue_source(logical_id, event["Properties"]))
        self.set_time_scale(self.time_scale)
        os.environ.update(everything)  # for drivers that read the stack's settings; each function has its own

    def concurrency_of(self, function: str) -> int:
        """How many instances of the function may run at once (and pollers its queue has)."""
        return self.concurrency.get(function, DEFAULT_CONCURRENCY)

    def set_time_scale(self, scale: float) -> None:
        """Run the batching windows at ``scale`` times their template values from now on (1.0: AWS's timing)."""
        self.time_scale = scale
        sources: list[QueueSource | StreamSource] = [*self.queue_sources, *self.stream_sources]
        for source in sources:
            source.window_seconds = source.template_window_seconds * scale

    def _queue_source(self, function: str, props: dict[str, Any]) -> QueueSource:
        queue = props["Queue"]["Fn::GetAtt"][0]
        redrive = self.resources[queue].get("Properties", {}).get("RedrivePolicy")
        return QueueSource(
            function=function,
            queue_url=self.names[queue],
            queue_arn=self.arns[queue],
            batch_size=int(props.get("BatchSize", 10)),
            template_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        )

    def _stream_source(self, function: str, props: dict[str, Any]) -> StreamSource:
        filters = props.get("FilterCriteria", {}).get("Filters", [])
        failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        return StreamSource(
            function=function,
            table=props["Stream"]["Fn::GetAtt"][0],
            batch_size=int(props.get("BatchSize", 100)),
            template_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            max_retries=int(props.get("MaximumRetryAttempts", 3)),
            patterns=[json.loads(f["Pattern"]) for f in filters],
            on_failure_queue=failure["Fn::GetAtt"][0] if failure else None,
        )

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke a function with an event: an instance of it that is free handles it (one event at a time per
        instance, as in Lambda); raises FunctionError if the handler raised."""
        handler = self.handlers[function]
        self.activity.begin()
        try:
            if isinstance(handler, Function):
                return handler(event)
            with self._function_locks.setdefault(function, threading.Lock()):  # a stand-in, in this process
                return handler(event, lambda_context(function, self.timeouts[function]))
        finally:
            self.activity.end()
            if self.activity.waiters:  # someone waits for the pipeline: read the stream now, not at the next poll
                self._wake_streams()

    # ------------------------------------------------------------ schedules

    def run_job(self, job: str, **extra: Any) -> dict[str, Any]:
        """Invoke the scheduled function as its schedule does (its Input, plus ``extra`` such as a ``day``)."""
        for schedule in self.schedules:
            if schedule.input.get("job") == job:
                event = {**schedule.input, **extra}
                result = self.invoke(schedule.function, event)
                return dict(result)
        raise KeyError(f"no schedule runs job {job!r}; template.yaml has {[s.input for s in self.schedules]}")

    def publish(self, topic: str, message: str) -> list[Any]:
        """Deliver an SNS message to the functions subscribed to the topic, in the event shape SNS sends."""
        arn = self.names[topic]
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": f"{arn}:{uuid.uuid4()}",
                    "Sns": {
                        "Type": "Notification",
                        "MessageId": str(uuid.uuid4()),
                        "TopicArn": arn,
                        "Subject": None,
                        "Message": message,
                        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                        "SignatureVersion": "1",
                        "Signature": "local",
                        "SigningCertUrl": "https://sns.local/cert.pem",
                        "UnsubscribeUrl": "https://sns.local/unsubscribe",
                        "MessageAttributes": {},
                    },
                }
            ]
        }
        return [self.invoke(function, event) for function in self.sns_subscribers.get(topic, [])]

    # ------------------------------------------------------------ HTTP API gateway

    def invoke_http(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        if method == "POST" and split.path.startswith(LOCAL_JOBS_PATH):
            return self._job_request(split.path.removeprefix(LOCAL_JOBS_PATH), dict(parse_qsl(split.query)))
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
        try:
            response = self.invoke(route.function, event)
        except FunctionError:
            return self._failed(route.function)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        return int(response["statusCode"]), dict(response.get("headers") or {}), data

    def _job_request(self, job: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Local only: POST /_local/jobs/<job>[?day=YYYY-MM-DD] runs a scheduled job now, as its schedule would."""
        try:
            result = self.run_job(job, **({"day": query["day"]} if "day" in query else {}))
        except KeyError as error:
            return 404, {"content-type": "application/json"}, json.dumps({"message": str(error)}).encode()
        except FunctionError:
            return self._failed(f"job {job}")
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()

    def _failed(self, what: str) -> tuple[int, dict[str, str], bytes]:
        """As API Gateway answers when the integration fails; while the stack stops, without a word."""
        if self._stopping.is_set():
            return 503, {"content-type": "application/json"}, b'{"message":"Service Unavailable"}'
        logging.getLogger(__name__).exception("%s failed", what)
        return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'

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
                if stack._stopping.is_set():
                    self.close_connection = True  # a kept-alive connection ends with this answer
                self.send_response(status)
                for name, value in response_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                if stack.quiet:
                    return
                message = format % args
                if getattr(self, "requestline", ""):
                    message = message.replace(self.requestline, masked_request_line(self.requestline))
                message = mask_email(message) or ""  # in any other line too (a malformed request's, say)
                sys.stderr.write(f"{self.address_string()} - - [{self.log_date_time_string()}] {message}\n")

        self._gateway = GatewayServer(("127.0.0.1", self.ports.gateway), GatewayHandler)
        thread = threading.Thread(target=self._gateway.serve_forever, name="gateway", daemon=True)
        thread.start()

    # ------------------------------------------------------------ event sources

    def _start_pollers(self) -> None:
        for source in self.queue_sources:  # one poller per instance the function may have, as Lambda scales out
            for number in range(self.concurrency_of(source.function)):
                queue_poller = QueuePoller(source, self.invoke, self.activity, self._stopping)
                self._thread(queue_poller.run, f"sqs-{source.function}-{number}")
        readers: dict[str, StreamFanOut] = {}  # one reader per table for all the mappings on its stream
        for stream in self.stream_sources:
            failure_queue = self.names[stream.on_failure_queue] if stream.on_failure_queue else None
            if stream.table not in readers:
                readers[stream.table] = StreamFanOut(StreamReader(self.dynamodb_url, self.names[stream.table]))
            tap = readers[stream.table].tap()
            poller = StreamPoller(stream, tap, self.invoke, self.activity, self._stopping, failure_queue)
            self._stream_pollers.append(poller)
            self._thread(poller.run, f"stream-{stream.function}")

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _wake_streams(self) -> None:
        for poller in self._stream_pollers:
            poller.wake_up()

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Wait until every event-source queue is empty, every stream is read to its end, and nothing runs.

        This process's own count of what runs and what is queued says when to look; SQS confirms it."""
        activity = self.activity
        urls = [source.queue_url for source in self.queue_sources]
        streams = [source.function for source in self.stream_sources]
        deadline = time.monotonic() + timeout
        with activity.changed:
            activity.waiters += 1
        seen, since = -1, time.monotonic()  # the generation last seen, and since when nothing has happened
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    with activity.changed:
                        waiting = {url.rsplit("/", 1)[-1]: n for url, n in activity.outstanding.items() if n}
                        busy = f"{activity.running} running, messages not yet done {waiting or 'none'}"
                    raise TimeoutError(f"the stack was still busy after {timeout:.0f}s: {busy}")
                with activity.changed:
                    activity.changed.wait_for(lambda: activity.quiet(urls), timeout=min(left, 0.5))
                    generation, looked_at = activity.generation, time.monotonic()
                self._wake_streams()  # each stream read to its end after this moment, with nothing left buffered
                with activity.changed:
                    read = partial(activity.streams_read, streams, looked_at)
                    activity.changed.wait_for(read, timeout=max(0.0, deadline - time.monotonic()))
                    if activity.generation != generation:
                        continue  # something ran or was sent meanwhile: look again
                    if generation != seen:
                        seen, since = generation, time.monotonic()
                    if not activity.quiet(urls):
                        if time.monotonic() - since > RECONCILE_AFTER_SECONDS:
                            self._reconcile(urls, generation)
                        continue
                queued = {url: self._queued(url) for url in urls}
                with activity.changed:
                    if activity.generation == generation and not any(queued.values()):
                        return
                self._stopping.wait(0.05)
        finally:
            with activity.changed:
                activity.waiters -= 1

    def _reconcile(self, urls: list[str], generation: int) -> None:
        """Nothing runs and nothing happened for a while, yet this process counts messages not done: if SQS holds
        none of them (in flight or not), the count went wrong somewhere; SQS is the truth, and the count follows."""
        activity = self.activity
        if activity.running:
            return
        counted = {url: activity.outstanding[url] for url in urls if activity.outstanding[url] > 0}
        if not counted or any(self._queued(url) for url in counted):
            return
        with activity.changed:
            if activity.generation != generation:
                return  # something happened meanwhile: the next look decides
            for url, count in counted.items():
                logging.getLogger(__name__).warning(
                    "%s: %d messages counted as not done, and SQS holds none: counted done", url, count
                )
                activity.outstanding[url] = 0
            activity.changed.notify_all()

    def _queued(self, queue_url: str) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def calls_made(self) -> Counter[str]:
        """The AWS calls made so far, by function and operation (a copy)."""
        return calls_so_far(self.calls)

    def queue_url(self, logical_id: str) -> str:
        return self.names[logical_id]
