"""E-mail through SES. The one place that sends mail; callers pass plain text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Mailer:
    sender: str
    client: Any = None  # a boto3 SES client; built on first use when None
    region: str = "ap-northeast-1"
    endpoint: str | None = None

    def send(self, to: str, subject: str, body: str) -> None:
        if self.client is None:
            import boto3

            self.client = boto3.client("ses", region_name=self.region, endpoint_url=self.endpoint)
        self.client.send_email(
            Source=self.sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
            },
        )
