"""The rebates context's items in the application table (keys: rebates/keys.py), their
reads, and the writes that move them, as `Write`s for a transaction another context
commits (a terminal's record, a ledger grant or take-back). Dumb: it writes the figures
it is given; what they are is decided by chalicelib/rebates/service.py and domain.py.

A month's accrual is open until the rebate job settles it (`closed`). Its writes are
conditioned so that an open month is only ever added to while open, and a settled one
only under the sums as read (the caller reads them again and retries when refused).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute

from ..errors import Contended
from ..table import Refused, Table, TableItem, Transaction, Write
from . import keys
from .domain import Accrual, RebateAccount, RebateRate


class AccrualItem(TableItem, discriminator="accrual"):
    """Running sums of one card's e-money payments in one month. `weighted` is
    Σ amount × rate in basis points, so the rebate is floor(weighted / 10,000).
    The rebate job settles it once: `closed`, with what it earned and what was granted."""

    issuer = UnicodeAttribute()
    month = UnicodeAttribute()
    yen = NumberAttribute(default=0)
    weighted = NumberAttribute(default=0)
    payments = NumberAttribute(default=0)
    closed = BooleanAttribute(null=True)
    due = NumberAttribute(null=True)
    granted = NumberAttribute(null=True)
    # Payments awaiting their settlement line (reconciliation): counted here, earning nothing.
    pending_yen = NumberAttribute(null=True)
    pending_weighted = NumberAttribute(null=True)


class RebateStateItem(TableItem, discriminator="rebate_state"):
    """A card's rebate account over its settled months: what they earn as they stand now
    (`earned`, moved by late records and cancels) and what was granted for them. Their
    difference is carried into the next rebate. `revision` guards the rebate job's write."""

    earned = NumberAttribute(default=0)
    granted = NumberAttribute(default=0)
    revision = NumberAttribute(default=0)


class RebateRateItem(TableItem, discriminator="rebate_rate"):
    bps = NumberAttribute()
    starts_on = UnicodeAttribute()
    ends_on = UnicodeAttribute()
    merchant_id = UnicodeAttribute(null=True)


class RebateStore:
    def __init__(self, table: Table) -> None:
        self.connection = table.connection

    # -- the writes a record's transaction carries ------------------------------------

    @staticmethod
    def month_write(
        issuer: str, month: str, idm: str, *, yen: int, weighted: int, payments: int,
        pending_yen: int | None = None, pending_weighted: int | None = None, settled_weighted: int | None = None,
        error: Callable[[], Exception] = Contended,
    ) -> Write:
        """Add to the month's sums: while it is open, or (`settled_weighted` given) to a
        settled month under its `weighted` as read. Refused with `error` otherwise."""
        actions = [
            AccrualItem.type.set(AccrualItem),
            AccrualItem.issuer.set(issuer),
            AccrualItem.month.set(month),
            AccrualItem.yen.add(yen),
            AccrualItem.weighted.add(weighted),
            AccrualItem.payments.add(payments),
        ]
        if pending_yen is not None and pending_weighted is not None:
            actions += [AccrualItem.pending_yen.add(pending_yen), AccrualItem.pending_weighted.add(pending_weighted)]
        if settled_weighted is None:
            condition = AccrualItem.closed.does_not_exist()
        else:
            condition = (AccrualItem.closed == True) & (AccrualItem.weighted == settled_weighted)  # noqa: E712
        return Write(AccrualItem(*keys.accrual(issuer, month, idm)), error, condition, tuple(actions))

    @staticmethod
    def pending_write(issuer: str, month: str, idm: str, *, pending_yen: int, pending_weighted: int) -> Write:
        """Add to the month's pending sums only, settled or not, so without a condition.
        The sums that earn exist (as 0) for the rebate job's condition on them."""
        return Write(
            AccrualItem(*keys.accrual(issuer, month, idm)),
            Contended,
            None,
            (AccrualItem.type.set(AccrualItem), AccrualItem.issuer.set(issuer), AccrualItem.month.set(month),
             AccrualItem.yen.add(0), AccrualItem.weighted.add(0), AccrualItem.payments.add(0),
             AccrualItem.pending_yen.add(pending_yen), AccrualItem.pending_weighted.add(pending_weighted)),
        )

    @staticmethod
    def account_write(idm: str, *, earned: int, granted: int | None = None) -> Write:
        """Move the card's rebate account by `earned` (and `granted`), unconditionally."""
        actions = [
            RebateStateItem.type.set(RebateStateItem),
            RebateStateItem.earned.add(earned),
            RebateStateItem.revision.add(1),
        ]
        if granted is not None:
            actions.append(RebateStateItem.granted.add(granted))
        return Write(RebateStateItem(*keys.rebate_state(idm)), Contended, None, tuple(actions))

    @staticmethod
    def listed_write(issuer: str, month: str, idm: str) -> Write:
        """Unconditional and adding nothing: it only lists the card in `month`."""
        return Write(
            AccrualItem(*keys.accrual(issuer, month, idm)),
            Contended,
            None,
            (AccrualItem.type.set(AccrualItem), AccrualItem.issuer.set(issuer), AccrualItem.month.set(month),
             AccrualItem.yen.add(0), AccrualItem.weighted.add(0), AccrualItem.payments.add(0)),
        )

    @staticmethod
    def settle_writes(
        issuer: str, accrual: Accrual, account: RebateAccount, due: int, granted: int, error: Callable[[], Exception]
    ) -> tuple[Write, Write]:
        """Close the month as read and move the card's account as read; either condition
        failing (a record or another run got there first) refuses with `error`."""
        month = Write(
            AccrualItem(*keys.accrual(issuer, accrual.month, accrual.idm)),
            error,
            condition=AccrualItem.closed.does_not_exist() & (AccrualItem.weighted == accrual.weighted),
            actions=(AccrualItem.closed.set(True), AccrualItem.due.set(due), AccrualItem.granted.set(granted)),
        )
        state = RebateStateItem(*keys.rebate_state(accrual.idm))
        fresh = account.revision is None
        book = Write(
            state,
            error,
            condition=RebateStateItem.pk.does_not_exist() if fresh else RebateStateItem.revision == account.revision,
            actions=(
                RebateStateItem.type.set(RebateStateItem),
                RebateStateItem.earned.set(account.earned + due),
                RebateStateItem.granted.set(account.granted + granted),
                RebateStateItem.revision.set((account.revision or 0) + 1),
            ),
        )
        return month, book

    def commit_writes(self, writes: Sequence[Write]) -> None:
        """Writes on their own, in one transaction. Raises WriteRefused."""
        tx = Transaction(self.connection)
        for write in writes:
            tx.write(write)
        try:
            tx.commit()
        except Refused as exc:
            exc.raise_for_claims_and_writes()
            raise

    # -- reads ----------------------------------------------------------------------------

    def accrual(self, issuer: str, month: str, idm: str) -> Accrual | None:
        """The card's month, strongly consistent, or None."""
        try:
            return _accrual(AccrualItem.get(*keys.accrual(issuer, month, idm), consistent_read=True))
        except AccrualItem.DoesNotExist:
            return None

    def accruals(self, issuer: str, month: str) -> Iterator[Accrual]:
        """Every card's accrual in the month: one strongly consistent query per shard."""
        for key in keys.accrual_shards(issuer, month):
            for item in AccrualItem.query(key, consistent_read=True):
                yield _accrual(item)

    def rebate_accounts(self, idms: Sequence[str]) -> dict[str, RebateAccount]:
        """The cards' rebate accounts (a fresh one where none exists), 100 per BatchGetItem."""
        accounts = {i: RebateAccount(i) for i in idms}
        for item in RebateStateItem.batch_get([keys.rebate_state(i) for i in idms], consistent_read=True):
            idm = keys.rebate_state_idm(item.pk)
            accounts[idm] = RebateAccount(idm, item.earned, item.granted, item.revision)
        return accounts

    # -- rates ------------------------------------------------------------------------------

    def put_rebate_rate(self, rate: RebateRate) -> None:
        RebateRateItem(
            *keys.rebate_rate(rate.issuer, rate.rate_id),
            bps=rate.bps,
            starts_on=rate.starts_on.isoformat(),
            ends_on=rate.ends_on.isoformat(),
            merchant_id=rate.merchant_id,
        ).save()

    def rebate_rates(self, issuer: str) -> list[RebateRate]:
        return [
            RebateRate(
                rate_id=item.sk.removeprefix(keys.RATE),
                issuer=issuer,
                bps=item.bps,
                starts_on=date.fromisoformat(item.starts_on),
                ends_on=date.fromisoformat(item.ends_on),
                merchant_id=item.merchant_id,
            )
            for item in RebateRateItem.query(keys.rebate_rates(issuer))
        ]


def _accrual(item: AccrualItem) -> Accrual:
    return Accrual(
        idm=keys.accrual_idm(item.sk),
        month=item.month,
        yen=item.yen,
        weighted=item.weighted,
        payments=item.payments,
        closed=bool(item.closed),
    )
