"""The report commands: ``report push`` and ``report render``."""

from __future__ import annotations

import argparse
from typing import Any

from hfselect.cli.options import add_hub_push_options


def cmd_report_push(args: argparse.Namespace) -> int:
    """``hfselect report push DIR --repo-id USER/NAME``: push a selection report folder as a Hub card."""
    from hfselect.cards import push_report

    url = push_report(
        args.directory, args.repo_id, repo_type=args.repo_type, private=args.private, create_pr=args.create_pr
    )
    print(f"pushed the report to {url}")
    return 0


def cmd_report_render(args: argparse.Namespace) -> int:
    """``hfselect report render DIR``: (re)write the card and plot of a report folder from its report.json."""
    from hfselect.cards import SelectionReport, write_report_folder

    written = write_report_folder(SelectionReport.from_json(args.directory), args.directory)
    for path in written.values():
        print(path)
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``report`` to the subcommands."""
    report = commands.add_parser(
        "report",
        parents=[common],
        help="render and push selection reports",
        description="Render and push selection reports (folders written by select and demo).",
    )
    report_commands = report.add_subparsers(dest="report_command", metavar="COMMAND", required=True)
    report_push = report_commands.add_parser("push", parents=[common], help="push a report folder to the Hub")
    report_push.add_argument("directory", metavar="DIR")
    report_push.add_argument("--repo-id", required=True, metavar="USER/NAME")
    report_push.add_argument("--repo-type", choices=["dataset", "model"], default="dataset")
    add_hub_push_options(report_push)
    report_push.set_defaults(handler=cmd_report_push)
    report_render = report_commands.add_parser(
        "render", parents=[common], help="rewrite README.md and the plot"
    )
    report_render.add_argument("directory", metavar="DIR")
    report_render.set_defaults(handler=cmd_report_render)
