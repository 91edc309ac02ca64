"""The ``hfselect`` command tree. Each command parses its options, calls the library and prints.

Errors that hfselect raises on purpose (:class:`~hfselect.errors.HfSelectError`) are printed as one
``hfselect: error: ...`` line with a non-zero exit and no traceback; ``--debug`` shows the
traceback instead. The commands live by group in :mod:`~hfselect.cli.repo` (crawl, repo, zoo),
:mod:`~hfselect.cli.reports`, :mod:`~hfselect.cli.bench` and :mod:`~hfselect.cli.pipeline` (cluster,
recall, select, demo); the pipeline itself is :mod:`hfselect.api`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from hfselect import logs
from hfselect._version import __version__
from hfselect.cli import bench, pipeline, repo, reports
from hfselect.cli.options import _common, plain_descriptions, plain_text
from hfselect.cli.output import print_recall
from hfselect.errors import HfSelectError

__all__ = ["build_parser", "main", "plain_text", "print_recall"]


def build_parser() -> argparse.ArgumentParser:
    """The full ``hfselect`` argument parser."""
    common = _common(defaults=False)
    parser = argparse.ArgumentParser(
        prog="hfselect",
        description="Find the best pretrained Hugging Face Hub model for your dataset, fast.",
        parents=[_common()],
    )
    parser.add_argument("--version", action="version", version=f"hfselect {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # The order of --help's command list.
    repo.register(commands, common)
    reports.register(commands, common)
    repo.register_zoo(commands, common)
    bench.register(commands, common)
    pipeline.register(commands, common)
    plain_descriptions(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.debug:
        logs.quiet_libraries()
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return status
    except HfSelectError as error:
        if args.debug:
            raise
        print(f"hfselect: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``hfselect cluster --json | head``). As Python's documentation
        # recommends, point stdout at devnull so the interpreter's final flush does not fail too.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("hfselect: interrupted; everything finished so far is saved", file=sys.stderr)
        return 130
