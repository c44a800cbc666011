"""AWS clients for the request path, built with botocore alone.

`boto3.client(...)` returns the same botocore client, but importing boto3 also imports
s3transfer and its thread pools: about 0.3 s of a container's first request (measured by
bench/coldstart.py), for nothing a client here uses. PynamoDB already talks to DynamoDB
through botocore; the stage secret, the mail queue and SES do the same, through the
botocore session of the table's connection (a second session would load botocore's
endpoint data again). (S3, for the reports and imports, keeps boto3: never on
a resident's or a terminal's first request.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _session() -> Any:
    from .table import TableItem

    return TableItem._get_connection().connection.session  # PynamoDB's (public) botocore session


def client(service: str, *, region: str | None = None, endpoint: str | None = None) -> Any:
    """A botocore client of `service` (the region and credentials from the environment
    when not given, as boto3's would)."""
    return _session().create_client(service, region_name=region, endpoint_url=endpoint)
