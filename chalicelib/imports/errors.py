"""Import errors: one root, one subclass per rule. A refused *file* raises; a refused
*row* is not an exception but a line of the result file (see domain.Row). The root
derives from the shared ChiikiError."""

from __future__ import annotations

from ..errors import ChiikiError


class ImportsError(ChiikiError):
    code = "import_error"


class FileRefused(ImportsError):
    """The whole file cannot be imported (not UTF-8, no header, a wrong column, no such
    issuer or kind): nothing in it was done, and the reason says what to fix."""

    code = "import_refused"


class UnknownKind(FileRefused):
    code = "unknown_import_kind"
    http_status = 404


class TooLargeForApi(FileRefused):
    code = "import_too_large"
    http_status = 413

    def __init__(self, rows: int, limit: int) -> None:
        super().__init__(
            f"the file has {rows:,} rows; the admin API takes at most {limit:,}: "
            "drop larger files in the imports bucket"
        )


class RunSuperseded(ImportsError):
    """Another invocation moved this run's cursor first (S3 delivered the event twice):
    this one stops, the other goes on. Nothing is lost: every row is exactly once."""

    code = "import_superseded"
    http_status = 409
