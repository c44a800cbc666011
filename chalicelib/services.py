"""The composition root: every service is built here, on first use, from the settings
(most once per Lambda container; the reports' services and the campaigns, cheap to build,
on each call). No context package's `__init__` builds one, and no job builds its own
state or store; the table and the AWS clients a service needs are built here from the
settings and passed in.

Each context is imported here on first use, not at import time: a cold start loads only
what the invoked route needs (the terminal API's signature libraries, for instance)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .campaigns.service import Campaigns
    from .imports.service import Importer
    from .job_progress import JobState
    from .ledger.service import Ledger
    from .mail import Mailer
    from .mypage.members import Members
    from .mypage.service import MyPage
    from .operators.service import Operators
    from .rebates.service import Rebates
    from .reconciliation.service import Reconciliation
    from .reports.service import Reports
    from .reports.store import ReportStore
    from .settings import Settings
    from .stage_secret import StageSecret
    from .table import Table
    from .terminals.service import TerminalService


def settings() -> Settings:
    from .settings import get_settings

    return get_settings()


@lru_cache(maxsize=1)
def table() -> Table:
    from .table import Table

    return Table.from_settings()


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    from .ledger_metrics import MeteredLedger
    from .reports.store import ledger_aggregates

    # A Ledger that counts its business metrics; each change writes the reports' aggregates
    # in its own transaction (the hook: the ledger imports no other context).
    return MeteredLedger.on_table(table(), extra_writes=ledger_aggregates)


@lru_cache(maxsize=1)
def rebates() -> Rebates:
    """The rebate's rates, accruals and accounts: the terminals write a payment's month
    with it; the rebate job settles the months."""
    from .rebates.service import Rebates
    from .rebates.store import RebateStore

    return Rebates(RebateStore(table()))


@lru_cache(maxsize=1)
def terminals() -> TerminalService:
    from .terminals.service import TerminalService
    from .terminals.store import TerminalStore

    return TerminalService(ledger(), TerminalStore(table()), reconciliation_default=settings().reconciliation,
                           rebates=rebates())


@lru_cache(maxsize=1)
def stage_secret() -> StageSecret | None:
    """The stage secret in Secrets Manager, when the settings name one (built without any
    AWS call; read on first use)."""
    from .stage_secret import StageSecret

    s = settings()
    if s.secret_id is None:
        return None
    return StageSecret(s.secret_id, max_age_s=s.secret_max_age_s, region=s.region, endpoint=s.secrets_endpoint)


def session_key() -> bytes:
    """The key of the hashes of e-mail addresses, codes and sessions: the plain local
    value, or the stage secret's `secret_key` (cached; read again after its max age)."""
    s = settings()
    if s.secret_key is not None:
        return s.secret_key
    return stage_secret().required("secret_key")


def origin_key() -> bytes | None:
    """What CloudFront sends the API (X-Chiiki-Origin): the plain local value, or the stage
    secret's `origin_key`; None when neither has one (no CloudFront in front). Plain local
    keys (tests, a hand-run function) mean no secret is read for either key."""
    s = settings()
    if s.origin_key is not None or s.secret_key is not None or s.secret_id is None:
        return s.origin_key
    return stage_secret().value("origin_key")


def mypage() -> MyPage:
    """Built once per session key: a rotated secret builds it anew with the new key."""
    return _mypage(session_key())


@lru_cache(maxsize=1)
def _mypage(secret: bytes) -> MyPage:
    from .mail import QueuedMailer
    from .mypage.service import MyPage
    from .mypage.store import MyPageStore

    s = settings()
    # Off the request path: the request only queues its mail (the send-mail function sends it).
    mailer = QueuedMailer(s.mail_queue_url, s.mail_queue, region=s.region, endpoint=s.sqs_endpoint)
    # The merchant directory from the terminals' TTL cache: a warm page reads none of it.
    return MyPage(ledger(), MyPageStore(table()), mailer, secret,
                  merchants=lambda issuer: terminals().directory(issuer))  # built on first use


@lru_cache(maxsize=1)
def members() -> Members:
    """Members and their links, for the jobs and the operators: without MyPage, so without
    the session key (a job's role may not read the stage secret)."""
    from .mypage.members import Members
    from .mypage.store import MyPageStore

    return Members(MyPageStore(table()))


@lru_cache(maxsize=1)
def mailer() -> Mailer:
    """SES itself: the send-mail function and the reminders job, scheduled or run by hand
    through the admin API (not a request path)."""
    from .mail import Mailer

    s = settings()
    return Mailer(sender=s.mail_from, region=s.region, endpoint=s.ses_endpoint)


def send_queued_mail(records: list[dict]) -> list[str]:
    """The send-mail function's work: the ids of the messages not sent."""
    from .mail import deliver

    return deliver(records, mailer())


@lru_cache(maxsize=1)
def job_state() -> JobState:
    """Where each daily job left off, per issuer (the jobs, and the admin API's job runs)."""
    from .job_progress import JobState

    return JobState()


def campaigns() -> Campaigns:
    """The campaigns (the daily job and the admin API), cheap to build: on each call."""
    from .campaigns.service import Campaigns
    from .campaigns.store import CampaignStore

    return Campaigns(ledger(), CampaignStore())


@lru_cache(maxsize=1)
def operators() -> Operators:
    from .operators.service import Operators

    # SES itself (mailer(), built on first use): only the reminders job, run by hand, sends mail.
    return Operators(ledger(), terminals(), members(), campaigns(), mailer=mailer, job_state=job_state(),
                     reconciliation=reconciliation())


@lru_cache(maxsize=1)
def reconciliation() -> Reconciliation:
    """Matching settlement lines to records (the import) and the months received (the rebate job)."""
    from .reconciliation.service import Reconciliation
    from .reconciliation.store import ReconciliationStore

    return Reconciliation(ledger(), ReconciliationStore(), terminals())


@lru_cache(maxsize=1)
def s3():
    """The S3 client (imports and reports), built on first use."""
    import boto3

    s = settings()
    return boto3.client("s3", region_name=s.region, endpoint_url=s.s3_endpoint)


@lru_cache(maxsize=1)
def importer() -> Importer:
    """CSV imports: the import-csv function (the imports bucket's notifications) and the admin API."""
    from .imports.service import Importer
    from .imports.store import ImportFiles, RunStore

    s = settings()
    files = ImportFiles(s3(), s.imports_bucket, s.reports_bucket)
    return Importer(ledger(), terminals(), RunStore(table()), files, reconciliation=reconciliation())


def report_store() -> ReportStore:
    """The reports' and the audit's store: the table, the reports bucket and the anchors bucket."""
    from .reports.store import ReportStore

    s = settings()
    return ReportStore(table(), s3(), s.reports_bucket, anchors_bucket=s.anchors_bucket)


def reports() -> Reports:
    """The monthly reports: the reports schedule, the admin API's downloads and the CLI."""
    from .reconciliation.service import Reconciliation
    from .reconciliation.store import ReconciliationStore
    from .reports.service import Reports
    from .terminals.store import TerminalStore

    directory = TerminalStore(table())
    the_ledger = ledger()
    reconciliation = Reconciliation(the_ledger, ReconciliationStore())  # the report reads no record
    return Reports(report_store(), lambda issuer: {m.merchant_id: m.name for m in directory.merchants(issuer)},
                   lambda issuer, month: reconciliation.report_rows(the_ledger.issuer(issuer), month))
