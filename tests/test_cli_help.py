"""Every command's --help is plain text: no reST markup from the docstrings it is built from."""

from __future__ import annotations

import argparse

from hfselect.cli import build_parser, plain_text


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                found += _all_parsers(sub)
    return found


def test_no_help_shows_rest_markup() -> None:
    parsers = _all_parsers(build_parser())
    assert len(parsers) > 15
    for parser in parsers:
        text = parser.format_help()
        assert "``" not in text and ":class:" not in text and ":func:" not in text, parser.prog
    select = next(p for p in parsers if p.prog.endswith(" select"))
    assert "hfselect select DATASET: coarse recall" in select.format_help()


def test_plain_text_keeps_the_words_of_the_markup() -> None:
    assert plain_text("``hfselect bench``: see :class:`~hfselect.training.bench.BenchConfig`") == (
        "hfselect bench: see BenchConfig"
    )
