"""Structured logs (Powertools Logger, JSON). Never log personal data: no e-mail
address, birth date, card number or full IDm; log keyed hashes or short prefixes."""

from __future__ import annotations

import logging
from functools import lru_cache

# These libraries log whole requests at DEBUG (item attributes, e-mail messages); they
# stay at WARNING whatever the root level, so turning debugging on leaks no personal data.
CHATTY = ("botocore", "boto3", "pynamodb", "urllib3")


def quiet_libraries() -> None:
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def logger():
    from aws_lambda_powertools import Logger

    return Logger(service="chiiki-points")
