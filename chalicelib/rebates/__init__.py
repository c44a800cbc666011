"""The monthly e-money rebate (SPEC §6.2): its rates, each card's monthly accrual of
e-money payments, the card's rebate account (carry-forward) and what a cancel takes back.
The terminals write a record's accrual in the record's own transaction with the writes
`Rebates.month_writes` hands them; the rebate job (chalicelib/jobs/rebate.py) settles it."""
