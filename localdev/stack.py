"""The local stack: moto's server standing in for AWS, the table, the demo data, and the
API on `chalice local`. Used by `make run`, the end-to-end tests and the tap benchmark.

    with LocalStack(api_port=8000, moto_port=5005, mail_port=8025, state_dir=Path(".local")) as stack:
        stack.api_url, stack.outbox_url, stack.cards, stack.terminals

The resident PWA and the API share one origin (`api_url`): a small web server serves
pwa/ and proxies /api to `chalice local` on a port of its own, as CloudFront does.

Everything binds 127.0.0.1 and uses fake AWS credentials: nothing reaches AWS.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from localdev.fake_aws import REGION, use_fake_aws

HOST = "127.0.0.1"
STAGE = "dev"
ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT_S = 60.0

# urllib honours *_proxy variables too; the health check talks to 127.0.0.1 directly.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def default_state_dir() -> Path:
    """Where `make run` keeps demo terminal keys and agent configs (never committed)."""
    return Path(os.environ.get("CHIIKI_STATE_DIR") or ROOT / ".local")


def require_free(port: int, env_name: str) -> None:
    """Fail with a clear message now: moto's server thread would hang start() on a taken port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise SystemExit(f"{HOST}:{port} is in use; set {env_name} to another port") from exc


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def stage_env() -> dict[str, str]:
    """`chalice local` applies the stage's environment over ours, so the demo data must go
    to the table the stage names, and mail must come from the sender it names."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    return config["stages"][STAGE]["environment_variables"]


def app_env(moto_url: str) -> dict[str, str]:
    """What the app's own code needs to use the local stack: moto's server for DynamoDB,
    SES, S3, SQS (the mail queue, found by its name) and Secrets Manager, and the stage's
    table, sender and secret (`chalice local` gets the same). No plain keys: the API reads
    the stage secret as a deployed one does, whatever the shell (or a test) has set."""
    stage = stage_env()
    return {"CHIIKI_DYNAMODB_ENDPOINT": moto_url, "CHIIKI_SES_ENDPOINT": moto_url, "CHIIKI_S3_ENDPOINT": moto_url,
            "CHIIKI_SQS_ENDPOINT": moto_url, "CHIIKI_SECRETS_ENDPOINT": moto_url,
            "CHIIKI_SECRET_ID": stage["CHIIKI_SECRET_ID"], "CHIIKI_SECRET_KEY": "", "CHIIKI_ORIGIN_KEY": "",
            "CHIIKI_TABLE": stage["CHIIKI_TABLE"], "CHIIKI_MAIL_FROM": stage["CHIIKI_MAIL_FROM"]}


def create_stage_secret(moto_url: str) -> None:
    """The stage secret, as the Deploy steps create it, with random keys: the API reads it
    at run time from moto's Secrets Manager exactly as a deployed one does."""
    import secrets

    import boto3

    boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_url).create_secret(
        Name=stage_env()["CHIIKI_SECRET_ID"],
        SecretString=json.dumps({"secret_key": secrets.token_urlsafe(32), "origin_key": secrets.token_urlsafe(32)}),
    )


def create_buckets(moto_url: str) -> None:
    """The imports, reports and anchors buckets, as infra/ creates them (names from the
    settings); the anchors bucket with Object Lock, its default retention one day here."""
    import boto3

    from chalicelib.settings import Settings

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    for name in (Settings.imports_bucket, Settings.reports_bucket):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    create_anchors_bucket(s3, Settings.anchors_bucket, retention_days=1)


def create_anchors_bucket(s3, name: str, *, retention_days: int) -> None:
    """A bucket like infra/'s AnchorsBucket: versioned, Object Lock on, COMPLIANCE by default."""
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION},
                     ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}},
    })


def wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"chalice local exited with code {proc.returncode}")
        try:
            with _DIRECT.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {HEALTH_TIMEOUT_S:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class LocalStack:
    api_port: int  # the one origin: the PWA and /api
    moto_port: int
    mail_port: int  # the local outbox page
    state_dir: Path  # demo terminal keys and agent configs
    quiet: bool = False  # chalice's own request log to /dev/null (benchmarks, tests)
    cards: list = field(default_factory=list)
    terminals: list = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def moto_url(self) -> str:
        return f"http://{HOST}:{self.moto_port}"

    @property
    def outbox_url(self) -> str:
        return f"http://{HOST}:{self.mail_port}"

    def __enter__(self) -> LocalStack:
        require_free(self.api_port, "CHIIKI_API_PORT")
        require_free(self.moto_port, "CHIIKI_MOTO_PORT")
        require_free(self.mail_port, "CHIIKI_MAIL_PORT")
        use_fake_aws(in_process=False)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per DynamoDB call is noise

        # Imported after the environment is set: nothing may build an AWS client with real credentials.
        from moto.server import ThreadedMotoServer

        from localdev.moto_serial import serialize_dynamodb

        serialize_dynamodb()  # moto's transactions are not isolated across its request threads otherwise
        self._moto = ThreadedMotoServer(ip_address=HOST, port=self.moto_port, verbose=False)
        self._chalice: subprocess.Popen | None = None
        self._servers: list = []
        self._mail_queue = None
        self._moto.start()
        try:
            self._load()
            self._start_api()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _load(self) -> None:
        # The models are bound to the table the settings name when chalicelib.table is first
        # imported (here, below): the stage's table on moto's server, as for the API. Table()
        # refuses if this process was bound to another one before.
        os.environ.update(CHIIKI_TABLE=stage_env()["CHIIKI_TABLE"], CHIIKI_DYNAMODB_ENDPOINT=self.moto_url)
        from chalicelib.campaigns.service import Campaigns
        from chalicelib.campaigns.store import CampaignStore
        from chalicelib.ledger.service import Ledger
        from chalicelib.ledger.store import CardStore
        from chalicelib.rebates.service import Rebates
        from chalicelib.rebates.store import RebateStore
        from chalicelib.reports.store import ledger_aggregates
        from chalicelib.table import Table
        from chalicelib.terminals.service import TerminalService
        from chalicelib.terminals.store import TerminalStore
        from localdev.demo import load_demo, load_demo_jobs, load_demo_terminals

        self.table = stage_env()["CHIIKI_TABLE"]
        table = Table(self.table, REGION, host=self.moto_url)
        table.create()
        store = CardStore(table)
        self.cards = load_demo(store)
        ledger = Ledger(store, extra_writes=ledger_aggregates)
        terminals = TerminalService(ledger, TerminalStore(table), rebates=Rebates(RebateStore(table)))
        self.terminals = load_demo_terminals(terminals, self.state_dir, self.api_url)
        self.cards += load_demo_jobs(terminals, Campaigns(ledger, CampaignStore()))
        import boto3

        boto3.client("ses", region_name=REGION, endpoint_url=self.moto_url).verify_email_identity(
            EmailAddress=stage_env()["CHIIKI_MAIL_FROM"]
        )
        create_buckets(self.moto_url)
        create_stage_secret(self.moto_url)
        self._start_mail_queue()

    def _start_mail_queue(self) -> None:
        """The mail queue as deployed, drained by the send-mail function's code in a thread
        of ours (`chalice local` runs no SQS handlers), and again whenever the outbox is read."""
        import boto3

        from chalicelib.mail import Mailer
        from chalicelib.settings import Settings
        from localdev.mail_queue import QueueDrain, create_queues

        sqs = boto3.client("sqs", region_name=REGION, endpoint_url=self.moto_url)
        queue_url, _ = create_queues(sqs, Settings.mail_queue)
        mailer = Mailer(sender=stage_env()["CHIIKI_MAIL_FROM"], region=REGION, endpoint=self.moto_url)
        self._mail_queue = QueueDrain(sqs, queue_url, mailer, Settings.mail_batch_size).start()

    def _start_api(self) -> None:
        from localdev import outbox, web

        chalice_port = free_port()
        env = {**os.environ, **app_env(self.moto_url), "PYTHONUNBUFFERED": "1"}
        self._chalice = subprocess.Popen(
            [str(Path(sys.prefix) / "bin" / "chalice"), "local", "--no-autoreload",
             "--host", HOST, "--port", str(chalice_port), "--stage", STAGE],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL if self.quiet else None,
            stderr=subprocess.DEVNULL if self.quiet else None,
            # Its own session: Ctrl-C reaches only us, and we stop chalice by pid, without
            # a KeyboardInterrupt traceback from it.
            start_new_session=True,
        )
        self._servers.append(web.serve(HOST, self.api_port, ROOT / "pwa", f"http://{HOST}:{chalice_port}"))
        self._servers.append(outbox.serve(HOST, self.mail_port, before_read=self._mail_queue.drain))
        wait_healthy(f"{self.api_url}/api/health", self._chalice)

    def wait(self) -> int:
        """Until chalice local exits; its exit code."""
        assert self._chalice is not None
        return self._chalice.wait()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if self._chalice is not None:
            stop(self._chalice)
        if self._mail_queue is not None:
            self._mail_queue.stop()
        self._moto.stop()
