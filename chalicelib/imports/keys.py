"""Key strings of the imports context, built and parsed in one place: its DynamoDB items
and its S3 objects.

S3 layout (imports bucket): an operator drops `<issuer>/<kind>/<any name>.csv`, e.g.
`niimi/cards/2022-10-24-first-batch.csv`; the kind is one of domain.Kind. The import
writes `import-results/<the same key>.result.csv` to the reports bucket. A long import
continues in a new invocation through a marker object `_continue/<run>/<row>.csv` in the
imports bucket (the bucket notifies the import function of every `.csv` object, so the
marker needs that suffix; it holds JSON)."""

from __future__ import annotations

from .domain import Kind
from .errors import FileRefused

RUN = "IMPORT#"
STATE = "STATE"
REJECTED = "REJECTED#"

CONTINUE = "_continue/"
RESULTS = "import-results/"


def run_state(run_id: str) -> tuple[str, str]:
    """One run's cursor and counts, written at each checkpoint (one run writes it, so
    it is not a hot key)."""
    return f"{RUN}{run_id}", STATE


def run_rejections(run_id: str, first_index: int) -> tuple[str, str]:
    """The rows one checkpoint interval rejected, starting at row index `first_index`."""
    return f"{RUN}{run_id}", f"{REJECTED}{first_index:07d}"


def run_partition(run_id: str) -> str:
    return f"{RUN}{run_id}"


def source(key: str) -> tuple[str, Kind]:
    """The issuer and kind of a dropped file, from its key."""
    parts = key.split("/")
    if len(parts) < 3 or not parts[0] or not parts[1] or not key.lower().endswith(".csv"):
        kinds = ", ".join(k.value for k in Kind)
        raise FileRefused(f"drop import files at <issuer>/<kind>/<name>.csv (kinds: {kinds})")
    return parts[0], Kind.named(parts[1])


def is_continuation(key: str) -> bool:
    return key.startswith(CONTINUE)


def continuation(run_id: str, next_index: int) -> str:
    """A new key per chunk: S3 notifies once per object created."""
    return f"{CONTINUE}{run_id}/{next_index:07d}.csv"


def result(key: str) -> str:
    return f"{RESULTS}{key}.result.csv"
