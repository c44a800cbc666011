"""The helpers every command group's parser uses: the group itself, and a subcommand
that runs a function."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def command(group, name: str, run: Callable, help: str) -> argparse.ArgumentParser:  # noqa: A002
    sub = group.add_parser(name, help=help, description=help)
    sub.set_defaults(run=run)
    return sub


def group(commands, name: str, help: str):  # noqa: A002
    """A command group (`card`, `merchant`, …): its subcommands are its actions."""
    return commands.add_parser(name, help=help).add_subparsers(dest="action", required=True, metavar="ACTION")
