"""Operator reports and the audit (§10). The schedules in `chalicelib.jobs`, the admin
API's download routes (routes.py) and the CLI get their services from
`chalicelib.services` (`reports()`, `report_store()`), built on first use, so importing
this package costs a cold start nothing.

Operators run the same by hand: `python -m chalicelib.reports --help`.
"""

from __future__ import annotations
