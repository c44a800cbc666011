"""The Chalice app: blueprints, middleware, schedules, S3 and SQS handlers. Nothing else."""

from chalice import Chalice, Cron

from chalicelib import jobs, observability
from chalicelib.imports.routes import bp as import_routes
from chalicelib.ledger.routes import bp as ledger_routes
from chalicelib.mypage.routes import bp as mypage_routes
from chalicelib.operators.routes import bp as operator_routes
from chalicelib.reports.routes import bp as report_routes
from chalicelib.settings import Settings
from chalicelib.terminals.routes import bp as terminal_routes

observability.quiet_libraries()
app = Chalice(app_name="chiiki-points")
app.register_blueprint(ledger_routes)
app.register_blueprint(terminal_routes)
app.register_blueprint(mypage_routes)
app.register_blueprint(operator_routes)
app.register_blueprint(import_routes)
app.register_blueprint(report_routes)
observability.register(app)


# Times are UTC: 15:05 UTC is 00:05 JST, the first minutes of the issuers' new day.
# Every job is exactly once and catches up missed days, so a retried or late run is safe.
@app.schedule(Cron(5, 15, "*", "*", "?", "*"), name="expire-points", description="Daily point expiry")
def expire_points(event):
    jobs.daily_expiry()


@app.schedule(Cron(10, 15, "*", "*", "?", "*"), name="grant-rebates", description="Monthly e-money rebate, due days")
def grant_rebates(event):
    jobs.daily_rebates()


@app.schedule(Cron(15, 15, "*", "*", "?", "*"), name="grant-campaigns", description="Charge-campaign rewards")
def grant_campaigns(event):
    jobs.daily_campaigns()


@app.schedule(Cron(20, 15, "*", "*", "?", "*"), name="sweep-dormant", description="60-month dormancy sweep")
def sweep_dormant(event):
    jobs.daily_dormancy()


# 09:00 JST: reminders arrive in the morning, not at midnight.
@app.schedule(Cron(0, 0, "*", "*", "?", "*"), name="send-reminders", description="Expiry reminder e-mails")
def send_reminders(event):
    jobs.daily_reminders()


# After the day's jobs (00:40 JST): last month's reports on the first run of a month.
@app.schedule(Cron(40, 15, "*", "*", "?", "*"), name="write-reports", description="Monthly operator reports")
def write_reports(event):
    jobs.daily_reports()


# 01:00 JST: anchor every chain head, then verify every chain against yesterday's anchor.
@app.schedule(Cron(0, 16, "*", "*", "?", "*"), name="audit-chains", description="Daily hash-chain audit and anchor")
def audit_chains(event):
    jobs.daily_audit()


# The imports bucket notifies this function of every CSV dropped in it (infra/template.json).
@app.lambda_function(name="import-csv")
def import_csv(event, context):
    from chalicelib import imports, services

    imports.handle_s3_event(services.importer(), event, context)


# MyPage's requests only queue their mail (chalicelib/mail.py); this sends it with SES.
# Packaged, infra/template.json points it at the stage's queue and turns on partial batch
# responses: a message not sent is offered again, then rests in the dead-letter queue.
@app.on_sqs_message(queue=Settings.mail_queue, batch_size=Settings.mail_batch_size, name="send-mail",
                    maximum_concurrency=Settings.mail_concurrency)
def send_mail(event):
    from chalicelib import services

    failed = services.send_queued_mail(event.to_dict()["Records"])
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
