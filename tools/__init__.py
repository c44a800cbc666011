"""Operator and developer tools: `python -m tools.admin` is the admin API client."""
