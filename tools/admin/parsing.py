"""The one helper every command group's parser uses: a subcommand that runs a function."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def command(group, name: str, run: Callable, help: str) -> argparse.ArgumentParser:  # noqa: A002
    sub = group.add_parser(name, help=help, description=help)
    sub.set_defaults(run=run)
    return sub
