"""The application's one DynamoDB table, through PynamoDB.

Every context stores its items here, told apart by the `type` discriminator, so a
change in one context and the records of another (a nonce, a check-in mark) can share
one TransactWriteItems. Key strings live in each context's `keys.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import DiscriminatorAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from .ledger.errors import Contended


class TableItem(Model):
    class Meta:
        table_name = "chiiki-points"  # replaced by Table() from the settings
        region = "ap-northeast-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    # Ephemeral items (nonces, codes, sessions) carry an expiry; DynamoDB's TTL removes them.
    expires_at = TTLAttribute(null=True)


def _models(cls: type[Model] = TableItem) -> list[type[Model]]:
    return [cls] + [m for sub in cls.__subclasses__() for m in _models(sub)]


class Table:
    """Binds every model to one table and one connection (one botocore client)."""

    def __init__(self, name: str, region: str, host: str | None = None) -> None:
        TableItem.Meta.table_name = name
        TableItem.Meta.region = region
        TableItem.Meta.host = host
        TableItem._connection = None
        table_connection = TableItem._get_connection()
        for model in _models():
            model._connection = table_connection
        self.name = name
        self.connection: Connection = table_connection.connection

    @classmethod
    def from_settings(cls) -> Table:
        from .settings import get_settings

        s = get_settings()
        return cls(s.table_name, s.region, s.dynamodb_endpoint)

    def create(self) -> None:
        """Create the table as infra/template.json declares it (for tests and `make run`)."""
        if not TableItem.exists():
            TableItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
            self.connection.client.update_time_to_live(
                TableName=self.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
            )


@dataclass(frozen=True)
class Claim:
    """A key that must not exist yet, put with a change: "this happens at most once".

    A point payment's cancel, an event check-in per card, a signature's nonce. When the
    key exists, the change is refused with `error`. A claim `on_replay` is put even when
    the request is a repeat answered from its record (a nonce is spent by every request).
    """

    pk: str
    sk: str
    error: Callable[[], Exception]
    expires_at: datetime | None = None
    on_replay: bool = False


class ClaimExists(Exception):
    def __init__(self, claim: Claim) -> None:
        super().__init__(f"{claim.pk} already exists")
        self.claim = claim


class ClaimItem(TableItem, discriminator="claim"):
    by = UnicodeAttribute()


def claim_item(claim: Claim, by: str) -> ClaimItem:
    return ClaimItem(claim.pk, claim.sk, by=by, expires_at=claim.expires_at)


def failed_positions(exc: TransactWriteError) -> set[int]:
    """Positions of the transaction items whose condition failed. Raises Contended when
    the transaction lost a race instead: then no condition was judged."""
    reasons = exc.cancellation_reasons or []
    if any(r is not None and r.code == "TransactionConflict" for r in reasons):
        raise Contended() from exc
    return {i for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"}


def put_claims(connection: Connection, claims: list[Claim] | tuple[Claim, ...], by: str) -> None:
    """Put claims on their own (a request answered from its record still spends its
    nonce), in one transaction. Raises ClaimExists."""
    from pynamodb.transactions import TransactWrite

    try:
        with TransactWrite(connection=connection) as tx:
            for claim in claims:
                tx.save(claim_item(claim, by), condition=TableItem.pk.does_not_exist())
    except TransactWriteError as exc:
        failed = failed_positions(exc)
        for i, claim in enumerate(claims):
            if i in failed:
                raise ClaimExists(claim) from exc
        raise
