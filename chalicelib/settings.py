"""The one typed settings object, read from the environment on first use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

# Only `make run` and the tests may run without a secret of their own. A deployed stage
# names its Secrets Manager secret in CHIIKI_SECRET_ID (.chalice/config.json) and the
# functions that need its keys read them at run time (chalicelib/stage_secret.py): the
# values never sit in the Lambda environment.
LOCAL_SECRET = "local-development-only-not-a-secret"
SECRET_MAX_AGE_S = 300.0  # how long a container keeps the secret before reading it again


@dataclass(frozen=True)
class Settings:
    region: str
    table_name: str
    dynamodb_endpoint: str | None
    ses_endpoint: str | None
    mail_from: str
    # Keys the hashes of e-mail addresses and codes: a plain value for local use and tests
    # (CHIIKI_SECRET_KEY); None in a deployed stage, where services.session_key() reads it.
    secret_key: bytes | None
    secure_cookies: bool
    imports_bucket: str = "chiiki-points-imports"  # operators drop CSV files here
    reports_bucket: str = "chiiki-points-reports"  # reports and import results are written here
    s3_endpoint: str | None = None
    stage: str = "local"  # the deployed stage (dev, prod): a dimension of the business metrics
    # CloudFront sends it to the API with every request (X-Chiiki-Origin): only then is its
    # CloudFront-Viewer-Address the resident's address. A plain value for local use and
    # tests (CHIIKI_ORIGIN_KEY); otherwise services.origin_key() reads it from the secret.
    # None from both: no CloudFront in front.
    origin_key: bytes | None = None
    # MyPage's mail goes through this queue; the send-mail function (app.py) sends it with
    # SES. Deployed, infra/ names the queue per stage and sets its URL; the name is what
    # `make run` creates and what app.py's decorator names (the packaged template points
    # the function at infra/'s queue instead).
    mail_queue: str = "chiiki-points-mail"
    mail_queue_url: str | None = None
    mail_batch_size: int = 10  # messages per send-mail invocation
    mail_concurrency: int = 2  # send-mail functions at once (the fewest SQS allows): SES's sending rate
    sqs_endpoint: str | None = None
    # The stage secret (Secrets Manager name or ARN) holding secret_key and origin_key.
    secret_id: str | None = None
    secret_max_age_s: float = SECRET_MAX_AGE_S
    secrets_endpoint: str | None = None  # `make run`: moto's server
    # Daily audit anchors: a bucket with S3 Object Lock (COMPLIANCE), apart from the reports.
    anchors_bucket: str = "chiiki-points-anchors"
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
    plain_secret = env.get("CHIIKI_SECRET_KEY") or None
    secret_id = env.get("CHIIKI_SECRET_ID") or None
    if "AWS_LAMBDA_FUNCTION_NAME" in env and not (plain_secret or secret_id):
        # Deployed without its secret: refuse rather than key hashes with a public string.
        raise MissingSecret("neither CHIIKI_SECRET_ID nor CHIIKI_SECRET_KEY is set for this function")
    if plain_secret is None and secret_id is None:
        plain_secret = LOCAL_SECRET
    return Settings(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-1",
        table_name=env.get("CHIIKI_TABLE", "chiiki-points"),
        dynamodb_endpoint=env.get("CHIIKI_DYNAMODB_ENDPOINT") or None,
        ses_endpoint=env.get("CHIIKI_SES_ENDPOINT") or None,
        mail_from=env.get("CHIIKI_MAIL_FROM", "noreply@points.example.jp"),
        secret_key=plain_secret.encode() if plain_secret else None,
        secure_cookies=env.get("CHIIKI_INSECURE_COOKIES", "") != "1",
        imports_bucket=env.get("CHIIKI_IMPORTS_BUCKET", "chiiki-points-imports"),
        reports_bucket=env.get("CHIIKI_REPORTS_BUCKET", "chiiki-points-reports"),
        s3_endpoint=env.get("CHIIKI_S3_ENDPOINT") or None,
        stage=env.get("CHIIKI_STAGE") or "local",
        origin_key=env.get("CHIIKI_ORIGIN_KEY", "").encode() or None,
        mail_queue=env.get("CHIIKI_MAIL_QUEUE") or Settings.mail_queue,
        mail_queue_url=env.get("CHIIKI_MAIL_QUEUE_URL") or None,
        sqs_endpoint=env.get("CHIIKI_SQS_ENDPOINT") or None,
        secret_id=secret_id,
        secret_max_age_s=float(env.get("CHIIKI_SECRET_MAX_AGE_S") or SECRET_MAX_AGE_S),
        secrets_endpoint=env.get("CHIIKI_SECRETS_ENDPOINT") or None,
        anchors_bucket=env.get("CHIIKI_ANCHORS_BUCKET", "chiiki-points-anchors"),
        reconciliation="AWS_LAMBDA_FUNCTION_NAME" in env
        and env.get("CHIIKI_RECONCILIATION", "").strip().lower() == "required",
    )
