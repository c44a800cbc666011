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


# 00:05 JST (15:05 UTC the day before): the first minutes of the issuers' new day.
@app.schedule(Cron(5, 15, "*", "*", "?", "*"), name="expire-points", description="Daily point expiry")
def expire_points(event):
    jobs.daily_expiry()
