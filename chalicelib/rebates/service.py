"""Rebates use cases: the campaign-period rates, what an e-money payment (or its cancel,
or its match to a settlement line) writes into its month and the card's rebate account,
and what the rebate job (chalicelib/jobs/rebate.py) reads and writes to settle a month.

A record's month moves in the record's own transaction, which the terminals' store
commits: `month_writes` hands it the writes as `table.Write`s (the terminals import no
rebates store). A month is open until the rebate job settles it (`closed`); a payment,
cancel or match landing in a settled month writes under the month's sums as read and
moves the card's rebate account by what the month now earns more or less, so the
difference is carried into the next rebate (§6.2); a late payment also lists its card in
the month it arrives, so that next rebate comes even for a card that pays nothing more.

Under reconciliation (§6.2, chalicelib/reconciliation/) a payment is recorded AWAITING:
it adds only to its month's `pending_*` sums, which earn nothing, and is listed as
awaiting its settlement line. Its match moves it into `yen`/`weighted` (through the same
settled-month path as a late record).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..errors import Contended
from ..ledger.domain import Actor, Source
from ..ledger.errors import CardClosed, IdempotencyConflict
from ..ledger.service import Ledger
from ..reconciliation.service import awaiting_write
from ..table import Table, Write, WriteRefused
from ..terminals.domain import AWAITING, MATCHED, CardTxn
from .domain import (
    Accrual,
    RebateAccount,
    RebateRate,
    earned_change,
    rebate_points,
    rebate_request_id,
    rebate_to_grant,
    weighted_change,
)
from .errors import MonthMoved
from .store import RebateStore

# A card is re-read and settled again when a record or another run moved it meanwhile.
SETTLE_ATTEMPTS = 10


@dataclass(frozen=True)
class Settled:
    """A card's month settled: what it earned, what was to be granted after the carry,
    and what was granted (less than `grant` for a returned or void card)."""

    due: int
    grant: int
    granted: int


class Rebates:
    def __init__(self, store: RebateStore) -> None:
        self.store = store

    @classmethod
    def on_table(cls, table: Table) -> Rebates:
        return cls(RebateStore(table))

    # -- rates ------------------------------------------------------------------------------

    def put_rate(self, rate: RebateRate) -> None:
        self.store.put_rebate_rate(rate)

    def rates(self, issuer: str) -> list[RebateRate]:
        return self.store.rebate_rates(issuer)

    # -- a record's month (written in the record's transaction) ---------------------------

    def month_writes(
        self, txn: CardTxn, sign: int, settled: int | None, arrival_month: str | None, *,
        moved: Callable[[], Exception] = Contended, taken_back: int | None = None,
    ) -> list[Write]:
        """What e-money payment `txn` entering (sign 1) or leaving (sign -1) its month
        writes: into the open month, or (`settled`: the settled month's `weighted` as read)
        into the settled month under that value, with the card's rebate account moved by
        what the month now earns more or less (less `taken_back`, what a cancel took back
        from the month's lot at once, which leaves `granted`). A refused condition on the
        month refuses with `moved` in a ledger change's transaction."""
        store = self.store
        change = weighted_change(txn, sign)
        if txn.reconcile == AWAITING:
            # Awaiting its settlement line: the pending sums only, settled month or not, and
            # on (a cancel: off) the list of records awaiting their line.
            return [store.pending_write(txn.issuer, txn.month, txn.idm, pending_yen=sign * txn.amount,
                                        pending_weighted=change),
                    awaiting_write(txn, listed=sign > 0)]
        matched = txn.reconcile == MATCHED and sign > 0  # the match itself: out of the pending sums
        writes = [store.month_write(
            txn.issuer, txn.month, txn.idm, yen=sign * txn.amount, weighted=change, payments=sign,
            pending_yen=-txn.amount if matched else None, pending_weighted=-change if matched else None,
            settled_weighted=settled, error=moved,
        )]
        if matched:
            writes.append(awaiting_write(txn, listed=False))
        if settled is None:
            return writes
        earned = earned_change(settled, change)
        writes.append(store.account_write(txn.idm, earned=earned,
                                          granted=-taken_back if taken_back is not None else None))
        if earned > 0 and arrival_month is not None and arrival_month != txn.month:
            writes.append(store.listed_write(txn.issuer, arrival_month, txn.idm))
        return writes

    def settled_weighted(self, txn: CardTxn) -> int | None:
        """The settled month's `weighted` sum of the payment as it stands, or None if open."""
        accrual = self.store.accrual(txn.issuer, txn.month, txn.idm)
        return accrual.weighted if accrual is not None and accrual.closed else None

    # -- the rebate job ------------------------------------------------------------------------

    def settle(
        self, ledger: Ledger, issuer_id: str, accrual: Accrual, account: RebateAccount, *, actor: Actor
    ) -> Settled | None:
        """Settle the card's month once: the grant (`ledger.grant` by `actor`), the month
        marked settled under its sums as read and the card's account under its revision,
        in one transaction. A record or another run moving them meanwhile makes it read
        them again; None when another run settled the month."""
        for _ in range(SETTLE_ATTEMPTS):
            due = rebate_points(accrual.weighted)
            grant = rebate_to_grant(due, account.carried)
            try:
                granted = self._pay(ledger, issuer_id, accrual, account, due, grant, actor)
            except (MonthMoved, WriteRefused, IdempotencyConflict):
                fresh = self.accrual(issuer_id, accrual.month, accrual.idm)
                if fresh is None or fresh.closed:
                    return None  # another run settled it
                accrual, account = fresh, self.rebate_accounts([accrual.idm])[accrual.idm]
                continue
            return Settled(due, grant, granted)
        raise MonthMoved(f"a card's {accrual.month} accrual kept moving")

    def _pay(
        self, ledger: Ledger, issuer_id: str, accrual: Accrual, account: RebateAccount, due: int, grant: int,
        actor: Actor,
    ) -> int:
        """Grant `grant` points and settle the month with it, in one transaction; returns the
        points granted. A returned or void card earns nothing more, but its month is settled."""
        def settle(granted: int) -> tuple[Write, Write]:
            return self.settle_writes(issuer_id, accrual, account, due, granted, MonthMoved)

        if grant > 0:
            try:
                ledger.grant(
                    accrual.idm,
                    grant,
                    request_id=rebate_request_id(issuer_id, accrual.month, accrual.idm),
                    actor=actor,
                    source=Source.REBATE,
                    reason=f"e-money rebate for {accrual.month}",
                    issuer_id=issuer_id,
                    writes=settle(grant),
                )
                return grant
            except CardClosed:
                pass
        self.commit_writes(settle(0))
        return 0

    def accruals(self, issuer: str, month: str) -> Iterator[Accrual]:
        """Every card's accrual in the month: one strongly consistent query per shard."""
        return self.store.accruals(issuer, month)

    def accrual(self, issuer: str, month: str, idm: str) -> Accrual | None:
        return self.store.accrual(issuer, month, idm)

    def rebate_accounts(self, idms: Sequence[str]) -> dict[str, RebateAccount]:
        """The cards' rebate accounts (a fresh one where none exists), 100 per BatchGetItem."""
        return self.store.rebate_accounts(idms)

    def settle_writes(
        self, issuer: str, accrual: Accrual, account: RebateAccount, due: int, granted: int,
        error: Callable[[], Exception],
    ) -> tuple[Write, Write]:
        """The month closed as read with what it earned (`due`) and what was `granted`, and
        the card's account moved as read, for the grant's own transaction; either condition
        failing (a record or another run got there first) refuses with `error`."""
        return self.store.settle_writes(issuer, accrual, account, due, granted, error)

    def commit_writes(self, writes: Sequence[Write]) -> None:
        """Writes on their own (a month settled with nothing granted). Raises WriteRefused."""
        self.store.commit_writes(writes)
