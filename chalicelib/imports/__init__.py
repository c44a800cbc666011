"""CSV imports (§10): what app.py's S3-triggered function calls, with the importer that
`chalicelib.services` builds (the admin API's route gets it there too).

Nothing is imported or built until first use, so `import app` stays light.

    @app.lambda_function(name="import-csv")     # the imports bucket notifies it (infra/)
    def import_csv(event, context):
        imports.handle_s3_event(services.importer(), event, context)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from .service import Importer, ImportReport

# Kept back from the invocation's time limit for the last checkpoint, the result file
# and the continuation marker.
RESERVE_SECONDS = 60.0


def deadline_from(context: Any, reserve_seconds: float = RESERVE_SECONDS) -> float | None:
    """A time.monotonic() deadline from a Lambda context (None without one: no limit)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return time.monotonic() + max(remaining() / 1000 - reserve_seconds, 1.0)


def handle_s3_event(importer: Importer, event: dict, context: Any = None) -> list[ImportReport | None]:
    """An S3 notification (one or more records), as Lambda delivers it: import (or go on
    importing) each object of the imports bucket it names until the invocation's deadline."""
    deadline = deadline_from(context)
    return [
        importer.handle_s3_object(record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"]),
                                  deadline=deadline)
        for record in event.get("Records", [])
        if record.get("eventName", "ObjectCreated").startswith("ObjectCreated")
    ]
