"""The ``netdoctor`` command."""

from __future__ import annotations

import argparse
import sys

from netdoctor import __version__, reportview, run
from netdoctor.lab import cli as lab_cli
from netdoctor.repair import rollback


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``netdoctor`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in run.MODES:  # everything after the mode is pytest's
        return run.run(args[0], args[1:])
    parser = argparse.ArgumentParser(
        prog="netdoctor", description="Find out why a Kubernetes pod network is broken."
    )
    parser.add_argument("--version", action="version", version=f"netdoctor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for mode, meaning in run.MODES.items():
        sub.add_parser(mode, help=f"{meaning}; pytest options follow",
                       description=f"{meaning}. Every further argument goes to pytest "
                       "(see pytest --help, group 'netdoctor').")
    lab_cli.add_parser(sub)
    reportview.add_parser(sub)
    rollback.add_parser(sub)
    parsed = parser.parse_args(args)
    if parsed.command == "lab":
        return lab_cli.run(parsed)
    if parsed.command == "report-view":
        return reportview.run(parsed)
    if parsed.command == "rollback":
        return rollback.run(parsed)
    parser.error(f"unknown command {parsed.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
