"""Fake AWS credentials for everything local: tests, benchmarks and `make run`.
Set before any AWS client is built, so nothing can reach a real account."""

from __future__ import annotations

import os

REGION = "ap-northeast-1"

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # A proxy from the shell must not see (or swallow) calls to our local servers.
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def use_fake_aws(*, in_process: bool) -> None:
    """Point this process at fake AWS. `in_process`: moto's in-process mock, so no
    endpoint override may be inherited from the shell."""
    os.environ.update(FAKE_AWS)
    os.environ.pop("AWS_PROFILE", None)  # botocore fails on a profile this machine lacks, keys or not
    if in_process:
        os.environ.pop("CHIIKI_DYNAMODB_ENDPOINT", None)
