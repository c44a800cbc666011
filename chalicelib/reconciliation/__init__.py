"""Reconciliation of the terminals' e-money records with the e-money acquirer's
settlement file (SPEC §6.2, §10): under it a record earns a rebate only once a line of
the file matches it, and a month's rebate waits for the month's file."""
