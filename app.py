"""The Chalice app: blueprints, middleware, schedules, S3 handlers. Nothing else."""

from chalice import Chalice

from chalicelib.ledger.routes import bp as ledger_routes
from chalicelib.terminals.routes import bp as terminal_routes

app = Chalice(app_name="chiiki-points")
app.register_blueprint(ledger_routes)
app.register_blueprint(terminal_routes)
