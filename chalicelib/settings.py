"""The one typed settings object, read from the environment on first use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

# Only `make run` and the tests may run without a secret of their own; a deployed stack
# sets CHIIKI_SECRET_KEY from Secrets Manager (see .chalice/config.json).
LOCAL_SECRET = "local-development-only-not-a-secret"


@dataclass(frozen=True)
class Settings:
    region: str
    table_name: str
    dynamodb_endpoint: str | None
    ses_endpoint: str | None
    mail_from: str
    secret_key: bytes  # keys the hashes of e-mail addresses and codes
    secure_cookies: bool
    imports_bucket: str = "chiiki-points-imports"  # operators drop CSV files here
    reports_bucket: str = "chiiki-points-reports"  # reports and import results are written here
    s3_endpoint: str | None = None
    stage: str = "local"  # the deployed stage (dev, prod): a dimension of the business metrics
    # CloudFront sends it to the API with every request (X-Chiiki-Origin): only then is its
    # CloudFront-Viewer-Address the resident's address. None: no CloudFront in front.
    origin_key: bytes | None = None
    # Whether an issuer that says nothing itself requires reconciliation with the e-money
    # acquirer's settlement file (SPEC §6.2): .chalice/config.json sets
    # CHIIKI_RECONCILIATION=required for the deployed stages. Only a deployed function
    # (in Lambda) believes it: `chalice local` under `make run` applies the dev stage's
    # environment too, and there, as in tests, it stays off.
    reconciliation: bool = False


class MissingSecret(RuntimeError):
    pass


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    if "AWS_LAMBDA_FUNCTION_NAME" in env and not env.get("CHIIKI_SECRET_KEY"):
        # Deployed without its secret: refuse rather than key hashes with a public string.
        raise MissingSecret("CHIIKI_SECRET_KEY is not set for this function")
    return Settings(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-1",
        table_name=env.get("CHIIKI_TABLE", "chiiki-points"),
        dynamodb_endpoint=env.get("CHIIKI_DYNAMODB_ENDPOINT") or None,
        ses_endpoint=env.get("CHIIKI_SES_ENDPOINT") or None,
        mail_from=env.get("CHIIKI_MAIL_FROM", "noreply@points.example.jp"),
        secret_key=env.get("CHIIKI_SECRET_KEY", LOCAL_SECRET).encode(),
        secure_cookies=env.get("CHIIKI_INSECURE_COOKIES", "") != "1",
        imports_bucket=env.get("CHIIKI_IMPORTS_BUCKET", "chiiki-points-imports"),
        reports_bucket=env.get("CHIIKI_REPORTS_BUCKET", "chiiki-points-reports"),
        s3_endpoint=env.get("CHIIKI_S3_ENDPOINT") or None,
        stage=env.get("CHIIKI_STAGE") or "local",
        origin_key=env.get("CHIIKI_ORIGIN_KEY", "").encode() or None,
        reconciliation="AWS_LAMBDA_FUNCTION_NAME" in env
        and env.get("CHIIKI_RECONCILIATION", "").strip().lower() == "required",
    )
