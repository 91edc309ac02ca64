"""Markdown for cards, with everything user-controlled escaped in one place.

A card shows values that come from users and from the Hub: model ids, dataset names, metric
names, a target, a command line, stop reasons. Any of them may hold HTML (``<img onerror=...>``),
Markdown (a link, a backtick that closes a code span or a fence), a ``|`` or a newline (a new
table row). So the card templates are rendered by :func:`render_card_template`, whose Jinja
environment escapes every ``{{ value }}`` (its ``finalize``) unless the value is
:class:`Markdown`: text built here, from escaped parts, by :func:`code`, :func:`link` and
:func:`code_block`, or by ``Markdown("**{}**").format(value)`` (which escapes ``value``). Plain
strings are always escaped, so a value a template or the Python side forgets to escape is shown as
text, never interpreted. The same idea as Jinja's HTML autoescaping (this class is a
:class:`markupsafe.Markup` whose escaping is Markdown's), applied to Markdown.

The YAML header is data, not Markdown: it is written by huggingface_hub's card classes and
passed in as one :class:`Markdown` value.
"""

from __future__ import annotations

import os
import re
from typing import Any, TypeVar
from urllib.parse import quote

import jinja2
from huggingface_hub import CardData, RepoCard
from markupsafe import Markup

__all__ = [
    "Markdown",
    "code",
    "code_block",
    "escape",
    "link",
    "one_line",
    "render_card",
    "render_card_template",
    "url",
]

CardT = TypeVar("CardT", bound=RepoCard)

# The punctuation that Markdown (CommonMark, GitHub's tables and strikethrough, the Hub's math)
# gives a meaning in the middle of a line, where every escaped value sits (a link needs ``[``, an
# image ``![``); each is written with a backslash, which shows it as it is.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]#|~$])")
# Control characters but tab and newline: never meant to be shown; some renderers end a line at them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BACKTICKS = re.compile(r"`+")


def one_line(value: Any) -> str:
    """``value`` as text on one line: every run of whitespace and control characters (newlines,
    Unicode line separators) one space, so it cannot start a table row or a block."""
    text = "" if value is None else str(value)
    return " ".join(_CONTROL.sub(" ", text).split())


class Markdown(Markup):
    """Markdown that is shown as it is: built from escaped parts, never from raw user text.

    ``Markdown("**{}**").format(value)``, ``Markdown(", ").join(values)`` and ``Markdown(a) + b``
    escape the plain strings they are given (as :class:`markupsafe.Markup` does for HTML).
    """

    __slots__ = ()

    @classmethod
    def escape(cls, s: Any, /) -> Markdown:
        """``s`` shown as text: one line, HTML's ``& < >`` as entities, Markdown's punctuation
        backslash-escaped. :class:`Markdown` (and :class:`~markupsafe.Markup`) passes unchanged."""
        if hasattr(s, "__html__"):
            return cls(s)
        text = one_line(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return cls(_MARKDOWN_SPECIALS.sub(r"\\\1", text))


def escape(value: Any) -> Markdown:
    """``value`` as Markdown text that shows exactly it (see :meth:`Markdown.escape`)."""
    return Markdown.escape(value)


def code(value: Any) -> Markdown:
    """``value`` as an inline code span, whatever backticks it holds; ``""`` for an empty value.

    The span's delimiter is one backtick longer than the longest run inside (CommonMark's rule), so
    no backtick in the value ends it; ``|`` is escaped, as GitHub's tables require even in code.
    """
    text = one_line(value).replace("|", "\\|")
    if not text:
        return Markdown("")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""  # a space each side is stripped
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


def code_block(text: Any, language: str = "") -> Markdown:
    """``text`` as a fenced code block whose fence no line of ``text`` can close."""
    body = _CONTROL.sub("", "" if text is None else str(text).replace("\r\n", "\n").replace("\r", "\n"))
    fence = "`" * max(3, max((len(run) for run in _BACKTICKS.findall(body)), default=0) + 1)
    return Markdown(f"{fence}{one_line(language)}\n{body}\n{fence}")


def url(value: str) -> Markdown:
    """A link destination: characters that could end it (spaces, parentheses, ``<>``, quotes) encoded."""
    return Markdown(quote(one_line(value), safe=":/?#=&%@+,;~"))


def link(text: Any, destination: str) -> Markdown:
    """A Markdown link: ``text`` (escaped unless :class:`Markdown`) pointing at ``destination``."""
    return Markdown("[{}]({})").format(text, url(destination))


def _join(values: Any, separator: str = "") -> Markdown:
    """Jinja's ``join`` for cards: each value escaped unless it is :class:`Markdown` already."""
    return Markdown(separator).join(values)


# No HTML autoescaping: ``finalize`` makes every printed value Markdown (escaped unless it already is
# Markdown). Whatever a template builds from plain strings (``~``) is then escaped as a whole: at
# worst Markdown shown as text, never text read as Markdown or HTML.
_ENVIRONMENT = jinja2.Environment(finalize=Markdown.escape, undefined=jinja2.StrictUndefined)
_ENVIRONMENT.filters.update(code=code, code_block=code_block, join=_join, url=url)


def render_card_template(template_path: str | os.PathLike[str], **context: Any) -> str:
    """Render a card template with every printed value escaped (see the module docstring)."""
    with open(template_path, encoding="utf-8") as handle:
        source = handle.read()
    return _ENVIRONMENT.from_string(source).render(**context)


def render_card(
    card_class: type[CardT], card_data: CardData, template_path: str | os.PathLike[str], **context: Any
) -> CardT:
    """What :meth:`huggingface_hub.RepoCard.from_template` does, with every printed value escaped.

    The template sees the card data's fields and ``context`` (which wins), and ``card_data``, the
    YAML block, as it is.
    """
    values = {**card_data.to_dict(), **context, "card_data": Markdown(card_data.to_yaml())}
    return card_class(render_card_template(template_path, **values))
