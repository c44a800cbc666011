"""The application's one DynamoDB table, through PynamoDB.

Every context stores its items here, told apart by the `type` discriminator, so a
change in one context and the records of another (a nonce, a check-in mark) can share
one TransactWriteItems. Key strings live in each context's `keys.py`.

The models are bound to the table once, where `TableItem` is defined, from the settings
(CHIIKI_TABLE, the region, CHIIKI_DYNAMODB_ENDPOINT), the usual PynamoDB way: nothing
rebinds them at run time, so one process uses one table. `Table` is that table as an
object the composition root (chalicelib/services.py) builds from the same settings and
passes to the stores: its name, its connection (for transactions) and `create()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.attributes import DiscriminatorAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.connection import Connection, TableConnection
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from .errors import Contended
from .settings import Settings, get_settings

if TYPE_CHECKING:
    from pynamodb.expressions.condition import Condition
    from pynamodb.expressions.update import Action


_BOUND = get_settings()  # read once, when this module is first imported


class TableItem(Model):
    class Meta:
        table_name = _BOUND.table_name
        region = _BOUND.region
        host = _BOUND.dynamodb_endpoint

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    # Ephemeral items (nonces, codes, sessions) carry an expiry; DynamoDB's TTL removes them.
    expires_at = TTLAttribute(null=True)

    @classmethod
    def _get_connection(cls) -> TableConnection:  # PynamoDB's own hook
        """Every model of the table shares TableItem's one connection (one botocore
        client), built on first use, whichever model is used first."""
        if cls is TableItem:
            return super()._get_connection()
        return TableItem._get_connection()


class TableNotBound(RuntimeError):
    """A Table was asked for another table than the one the models are bound to."""


class Table:
    """The table every model is bound to (from the settings, once: see above) and its one
    connection (one botocore client). Building one binds nothing: it checks that it names
    the table the models use, so no code can believe it writes elsewhere."""

    def __init__(self, name: str, region: str, host: str | None = None) -> None:
        meta = TableItem.Meta
        if (name, region, host) != (meta.table_name, meta.region, meta.host):
            raise TableNotBound(f"the models use table {meta.table_name} ({meta.region}, {meta.host or 'AWS'}), "
                                f"from the settings read when chalicelib.table was imported, not {name} "
                                f"({region}, {host or 'AWS'})")
        self.name = name
        self.connection: Connection = TableItem._get_connection().connection

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Table:
        """The table of these settings; by default of those the models were bound with
        (read once: a later read of the environment cannot name another table)."""
        s = settings or _BOUND
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


@dataclass(frozen=True)
class Write:
    """Another context's item written in a change's own transaction, under its own
    condition: bookkeeping that must move with the change or not at all (the rebate job
    settles a card's month in the transaction of the grant it pays). An update when
    `actions` are given, a delete when `delete`, a put otherwise. When the condition
    fails the change is refused with `error`."""

    item: TableItem
    error: Callable[[], Exception]
    condition: Condition | None = None
    actions: tuple[Action, ...] = ()
    delete: bool = False


class WriteRefused(Exception):
    def __init__(self, write: Write) -> None:
        super().__init__(f"the condition on {write.item.pk} failed")
        self.write = write


class ClaimItem(TableItem, discriminator="claim"):
    by = UnicodeAttribute()


def claim_item(claim: Claim, by: str) -> ClaimItem:
    return ClaimItem(claim.pk, claim.sk, by=by, expires_at=claim.expires_at)


class Refused(Exception):
    """Conditions of a transaction failed: `names` says whose (see Transaction)."""

    def __init__(self, names: list[object]) -> None:
        super().__init__(f"conditions failed: {names}")
        self.names = names

    def raise_for_claims_and_writes(self) -> None:
        """Raise ClaimExists or WriteRefused if a claim's or a write's condition failed."""
        for name in self.names:
            if isinstance(name, Claim):
                raise ClaimExists(name) from self
            if isinstance(name, Write):
                raise WriteRefused(name) from self


class Transaction:
    """One TransactWriteItems whose items carry names, so a failed condition is reported
    by name rather than by position: PynamoDB sends puts before updates whatever the
    order they were added in, so positions are easy to get wrong."""

    def __init__(self, connection: Connection) -> None:
        from pynamodb.transactions import TransactWrite

        self._tx = TransactWrite(connection=connection)
        self._deletes: list[object] = []
        self._puts: list[object] = []
        self._updates: list[object] = []

    def put(self, item: TableItem, name: object, condition: Condition | None = None) -> None:
        self._tx.save(item, condition=condition)
        self._puts.append(name)

    def update(self, item: TableItem, actions: list[Action], name: object, condition: Condition | None = None) -> None:
        self._tx.update(item, actions=actions, condition=condition)
        self._updates.append(name)

    def delete(self, item: TableItem, name: object, condition: Condition | None = None) -> None:
        self._tx.delete(item, condition=condition)
        self._deletes.append(name)

    def claim(self, claim: Claim, by: str) -> None:
        self.put(claim_item(claim, by), claim, TableItem.pk.does_not_exist())

    def write(self, write: Write) -> None:
        if write.delete:
            self.delete(write.item, write, write.condition)
        elif write.actions:
            self.update(write.item, list(write.actions), write, write.condition)
        else:
            self.put(write.item, write, write.condition)

    def commit(self) -> None:
        """Raises Refused naming the items whose condition failed, or Contended when the
        transaction lost a race with another one (then no condition was judged)."""
        try:
            with self._tx:
                pass
        except TransactWriteError as exc:
            order = self._deletes + self._puts + self._updates  # PynamoDB's order
            failed = failed_positions(exc)
            if not failed:
                raise
            raise Refused([order[i] for i in sorted(failed)]) from exc


def failed_positions(exc: TransactWriteError) -> set[int]:
    """Positions of the transaction items whose condition failed. Raises Contended when
    the transaction lost a race instead: then no condition was judged."""
    reasons = exc.cancellation_reasons or []
    if any(r is not None and r.code == "TransactionConflict" for r in reasons):
        raise Contended() from exc
    return {i for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"}


def put_claims(connection: Connection, claims: Sequence[Claim], by: str) -> None:
    """Put claims on their own (a request answered from its record still spends its
    nonce), in one transaction. Raises ClaimExists."""
    tx = Transaction(connection)
    for claim in claims:
        tx.claim(claim, by)
    try:
        tx.commit()
    except Refused as exc:
        exc.raise_for_claims_and_writes()
        raise
