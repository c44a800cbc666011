"""The Chalice app: blueprints, middleware, schedules, S3 handlers. Nothing else."""

from chalice import Chalice, Cron

from chalicelib import jobs
from chalicelib.ledger.routes import bp as ledger_routes
from chalicelib.mypage.routes import bp as mypage_routes
from chalicelib.observability import quiet_libraries
from chalicelib.terminals.routes import bp as terminal_routes

quiet_libraries()
app = Chalice(app_name="chiiki-points")
app.register_blueprint(ledger_routes)
app.register_blueprint(terminal_routes)
app.register_blueprint(mypage_routes)


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
