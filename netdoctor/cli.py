"""The ``netdoctor`` command."""

from __future__ import annotations

import argparse
import sys

from netdoctor import __version__
from netdoctor.lab import cli as lab_cli
from netdoctor.repair import rollback


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``netdoctor`` console script."""
    parser = argparse.ArgumentParser(
        prog="netdoctor", description="Find out why a Kubernetes pod network is broken."
    )
    parser.add_argument("--version", action="version", version=f"netdoctor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    lab_cli.add_parser(sub)
    rollback.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "lab":
        return lab_cli.run(args)
    if args.command == "rollback":
        return rollback.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
