"""Services built on first use from the settings, one per Lambda container.

Each context is imported here on first use, not at import time: a cold start loads only
what the invoked route needs (the terminal API's signature libraries, for instance)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ledger.service import Ledger
    from .mypage.service import MyPage
    from .operators.service import Operators
    from .settings import Settings
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
    from .ledger.store import CardStore
    from .ledger_metrics import MeteredLedger

    return MeteredLedger(CardStore(table()))  # a Ledger that counts its business metrics


@lru_cache(maxsize=1)
def terminals() -> TerminalService:
    from .terminals.service import TerminalService
    from .terminals.store import TerminalStore

    return TerminalService(ledger(), TerminalStore(table()), reconciliation_default=settings().reconciliation)


@lru_cache(maxsize=1)
def mypage() -> MyPage:
    from .mail import Mailer
    from .mypage.service import MyPage
    from .mypage.store import MyPageStore
    from .terminals.store import TerminalStore

    s = settings()
    mailer = Mailer(sender=s.mail_from, region=s.region, endpoint=s.ses_endpoint)
    directory = TerminalStore(table())
    return MyPage(
        ledger(), MyPageStore(table()), mailer, s.secret_key, merchants=lambda issuer: list(directory.merchants(issuer))
    )


@lru_cache(maxsize=1)
def operators() -> Operators:
    from .campaigns.service import Campaigns
    from .mail import Mailer
    from .mypage.store import MyPageStore
    from .operators.service import Operators

    s = settings()
    mailer = Mailer(sender=s.mail_from, region=s.region, endpoint=s.ses_endpoint)
    return Operators(ledger(), terminals(), MyPageStore(table()), Campaigns(ledger()), mailer=lambda: mailer)


@lru_cache(maxsize=1)
def s3():
    """The S3 client (imports and reports), built on first use."""
    import boto3

    s = settings()
    return boto3.client("s3", region_name=s.region, endpoint_url=s.s3_endpoint)
