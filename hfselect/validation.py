"""Checks of options (numbers, names, choices, paths), shared by the Python API and the command line.

A wrong number must never reach the repository: ``bench --epochs 0`` would store an untrained
model's score as a finished benchmark result, which then feeds clustering and recall. So every
option is checked where it enters hfselect, before any work starts:

- in the Python API, the ``check_*`` functions raise :class:`~hfselect.errors.InvalidValueError`
  (a ``ValueError``) or :class:`~hfselect.errors.InvalidTypeError` (a ``TypeError``) naming the
  option and the value;
- on the command line, the ``positive_int``-style ``type=`` functions turn the same checks into
  argparse's one-line usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from hfselect.errors import InvalidTypeError, InvalidValueError

THRESHOLD_SILHOUETTE = "silhouette"


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """``value`` when it is an integer ``>= minimum``; else :class:`InvalidValueError` naming ``name``."""
    integral = not isinstance(value, bool) and (isinstance(value, int) or _is_integral(value))
    if not integral or int(value) < minimum:
        raise InvalidValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def check_optional_int(name: str, value: Any, *, minimum: int) -> int | None:
    """Like :func:`check_int`, with ``None`` allowed (an option that was not given)."""
    return None if value is None else check_int(name, value, minimum=minimum)


def check_positive_float(name: str, value: Any) -> float:
    """``value`` when it is a finite number ``> 0``; else :class:`InvalidValueError`."""
    number = _finite_number(name, value, "a number > 0")
    if number <= 0:
        raise InvalidValueError(f"{name} must be a number > 0, not {value!r}")
    return number


def check_non_negative_float(name: str, value: Any) -> float:
    """``value`` when it is a finite number ``>= 0``; else :class:`InvalidValueError`."""
    number = _finite_number(name, value, "a number >= 0")
    if number < 0:
        raise InvalidValueError(f"{name} must be a number >= 0, not {value!r}")
    return number


def check_shard(name: str, value: Any) -> tuple[int, int]:
    """A shard ``(i, n)``: worker ``i`` of ``n``, with ``0 <= i < n``; else :class:`InvalidValueError`."""
    try:
        index, count = value
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} must be a pair (i, n), not {value!r}") from None
    count = check_int(f"{name}'s n", count, minimum=1)
    index = check_int(f"{name}'s i", index, minimum=0)
    if index >= count:
        raise InvalidValueError(f"{name} {index}/{count} is not valid: use I/N with 0 <= I < N")
    return index, count


def check_name(name: str, value: Any) -> str:
    """``value`` when it is a non-empty string without surrounding blanks (a metric's name, ...)."""
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidValueError(f"{name} must be a non-empty name without surrounding blanks, not {value!r}")
    return value


def check_revision(name: str, value: Any) -> str:
    """A Hub revision: a branch, tag or commit, ``refs/pr/1`` included, under git's rules for ref names.

    No empty part or one starting with ``.`` (so no ``..`` climbing out of a cache folder), no
    leading, trailing or doubled ``/``, no blank, control character or any of ``~^:?*[\\``.
    """
    parts = value.split("/") if isinstance(value, str) else [""]
    if (
        any(not part or part.startswith(".") or part.endswith((".", ".lock")) for part in parts)
        or any(ord(char) < 33 or ord(char) == 127 or char in "~^:?*[\\" for char in value)
        or "@{" in value
        or value == "@"
    ):
        raise InvalidValueError(
            f"{name} must be a branch, tag or commit of the Hub repository, not {value!r}"
        )
    return value


def check_threshold(name: str, value: Any) -> float | str:
    """A clustering threshold: a finite number ``>= 0`` or ``"silhouette"`` (chosen from the data)."""
    if value == THRESHOLD_SILHOUETTE:
        return THRESHOLD_SILHOUETTE
    expected = f"a number >= 0 or '{THRESHOLD_SILHOUETTE}'"
    number = _finite_number(name, value, expected)
    if number < 0:
        raise InvalidValueError(f"{name} must be {expected}, not {value!r}")
    return number


# A study name becomes a folder under the output folder (its checkpoints): it is held to the rules of
# a Hub repo name, so that it can never be a path ("../../models") or a hidden or odd file name.
_STUDY_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")


def check_study_name(name: str, value: Any) -> str:
    """A study name: letters, digits, ``-``, ``_`` and ``.``, at most 96, no ``..`` or ``--``, starting and
    ending with a letter or digit (a Hub repo name's rules); else :class:`InvalidValueError`."""
    if not isinstance(value, str) or not _STUDY_NAME.fullmatch(value) or ".." in value or "--" in value:
        raise InvalidValueError(
            f"{name} must be a name like a Hub repo's (letters, digits, '-', '_' and '.', at most 96, "
            f"starting and ending with a letter or digit, no '..' or '--'), not {value!r}"
        )
    return value


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def check_duration(name: str, value: Any) -> float:
    """Seconds in ``4h``, ``90m``, ``2.5h``, ``45s`` or a number of seconds; positive and finite."""
    expected = "a duration such as 4h, 90m, 2.5h or 3600 (seconds)"
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*", value)
        if match is None:
            raise InvalidValueError(f"{name} must be {expected}, not {value!r}")
        value = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    seconds = _finite_number(name, value, expected)
    if seconds <= 0:
        raise InvalidValueError(f"{name} must be {expected} > 0, not {value!r}")
    return seconds


def check_learning_rates(name: str, value: Any) -> list[float]:
    """A non-empty list of distinct learning rates, each a finite number > 0 (``"1e-5,3e-5"`` too)."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, (int, float)) or not value:
        raise InvalidValueError(f"{name} must be a non-empty list of numbers > 0, not {value!r}")
    rates = [
        check_positive_float(name, _float_text(name, part) if isinstance(part, str) else part)
        for part in value
    ]
    if len(set(rates)) < len(rates):
        raise InvalidValueError(f"{name} lists a learning rate twice: {value!r}")
    return rates


def check_margin(name: str, value: Any) -> float | str:
    """A low-performer margin: ``"auto"`` or a finite number ``>= 0``."""
    if value == "auto":
        return "auto"
    expected = "'auto' or a number >= 0"
    number = _finite_number(name, value, expected)
    if number < 0:
        raise InvalidValueError(f"{name} must be {expected}, not {value!r}")
    return number


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """``value`` when it is one of ``choices``; else :class:`InvalidValueError` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def check_text(name: str, value: Any, what: str, *, path: bool = False) -> str:
    """A non-empty string (also an ``os.PathLike`` with ``path``): a dataset id, a file, a column.

    A wrong type is :class:`InvalidTypeError`; an empty or blank string :class:`InvalidValueError`.
    """
    if path and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be {what} (a string), not {type(value).__name__} {value!r}")
    if not value.strip():
        raise InvalidValueError(f"{name} must be {what}, not {value!r}")
    return value


def check_instance(name: str, value: Any, kind: type, what: str) -> Any:
    """``value`` when it is a ``kind``; else :class:`InvalidTypeError` (``what`` says what is expected)."""
    if not isinstance(value, kind):
        raise InvalidTypeError(f"{name} must be {what}, not {type(value).__name__} {value!r:.80}")
    return value


def check_texts(name: str, value: Any, what: str) -> list[str]:
    """A list of non-empty strings (not one string, whose characters would be taken one by one)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise InvalidTypeError(f"{name} must be a list of {what}, not {type(value).__name__} {value!r}")
    return [check_text(name, item, what) for item in value]


def check_scores(name: str, value: Any) -> dict[str, float]:
    """Model id -> score, from a mapping (or a pandas Series); ``None`` and NaN scores are left out.

    Anything else (a string, a list) is :class:`InvalidTypeError` rather than a confusing failure
    deep inside the recall; a score that is not a number is :class:`InvalidValueError`.
    """
    if isinstance(value, (str, bytes)) or not callable(getattr(value, "items", None)):
        raise InvalidTypeError(
            f"{name} must be a mapping of model id -> score, not {type(value).__name__} {value!r:.80}"
        )
    scores: dict[str, float] = {}
    for model, score in value.items():
        check_text(f"{name} key", model, "a model id")
        if score is None:
            continue
        if isinstance(score, (bool, str, bytes)):
            raise InvalidValueError(f"{name}[{model!r}] must be a number, not {score!r}")
        try:
            number = float(score)
        except (TypeError, ValueError):
            raise InvalidValueError(f"{name}[{model!r}] must be a number, not {score!r}") from None
        if not math.isnan(number):  # NaN: a failed proxy, i.e. missing
            scores[model] = number
    return scores


# -- paths hfselect writes ----------------------------------------------------------------------
# Checked before any work: a report folder that is a file used to fail after the whole selection
# (and its study rows) had been done, with a traceback.


def check_output_folder(name: str, value: Any) -> Path:
    """A folder hfselect may create or write into; else :class:`InvalidValueError` saying why not."""
    path = Path(check_text(name, value, "a folder", path=True))
    problem = _folder_problem(path)
    if problem:
        raise InvalidValueError(f"{name}: {problem}")
    return path


def check_output_file(name: str, value: Any) -> Path:
    """A file hfselect may create or overwrite (its missing folders are made); else :class:`InvalidValueError`."""
    path = Path(check_text(name, value, "a file", path=True))
    problem = _file_problem(path)
    if problem:
        raise InvalidValueError(f"{name}: {problem}")
    return path


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def _missing_folder_problem(path: Path) -> str | None:
    """Why ``path`` (missing) cannot be made: its nearest existing parent is a file or read-only."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"'{path}' cannot be created: '{parent}' is a file, not a folder"
    if not _writable(parent):
        return f"'{path}' cannot be created: '{parent}' is read-only"
    return None


def _folder_problem(path: Path) -> str | None:
    if not path.exists():
        return _missing_folder_problem(path)
    if not path.is_dir():
        return f"'{path}' is a file, not a folder; give a folder"
    if not _writable(path):
        return f"'{path}' is a read-only folder"
    return None


def _file_problem(path: Path) -> str | None:
    if path.is_dir():
        return f"'{path}' is a folder; give a file name"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"'{path}' is read-only"
    return _missing_folder_problem(path)


def _is_integral(value: Any) -> bool:
    """numpy integers and integral floats (``5.0``) count as integers; ``5.5`` and strings do not."""
    try:
        return not isinstance(value, (str, bytes)) and float(value).is_integer() and int(value) == value
    except (TypeError, ValueError, OverflowError):
        return False


def _finite_number(name: str, value: Any, expected: str) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise InvalidValueError(f"{name} must be {expected}, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} must be {expected}, not {value!r}") from None
    if not math.isfinite(number):
        raise InvalidValueError(f"{name} must be {expected}, not {value!r}")
    return number


# -- argparse ``type=`` functions -------------------------------------------------------------


def _argument_type(
    parse: Callable[[str], Any], check: Callable[[Any], Any], what: str
) -> Callable[[str], Any]:
    """An argparse ``type=`` function: parse the text, then check it; errors become usage errors."""

    def convert(text: str) -> Any:
        try:
            return check(parse(text))
        except (ValueError, InvalidValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None

    convert.__name__ = what  # argparse names the type in some messages
    return convert


def _float_text(name: str, text: str) -> float:
    """``float(text)``, whose error names the option and the text."""
    try:
        return float(text)
    except ValueError:
        raise InvalidValueError(f"{name} must be numbers > 0, not {text!r}") from None


def _number(text: str) -> float:
    return float(text)


def _shard_text(text: str) -> tuple[int, int]:
    index, count = text.split("/")  # a ValueError unless exactly one "/"
    return int(index), int(count)


def _path_type(problem: Callable[[Path], str | None]) -> Callable[[str], str]:
    """An argparse ``type=`` function for a path hfselect writes: what is wrong with it is the usage error."""

    def convert(text: str) -> str:
        why = problem(Path(text)) if text.strip() else f"expected a path, not {text!r}"
        if why:
            raise argparse.ArgumentTypeError(why)
        return text

    convert.__name__ = "path"
    return convert


def _margin_text(text: str) -> float | str:
    return text if text == "auto" else float(text)


def _threshold_text(text: str) -> float | str:
    return text if text == THRESHOLD_SILHOUETTE else float(text)


positive_int = _argument_type(int, lambda value: check_int("value", value, minimum=1), "an integer >= 1")
non_negative_int = _argument_type(int, lambda value: check_int("value", value, minimum=0), "an integer >= 0")
reduction_factor_value = _argument_type(
    int, lambda value: check_int("value", value, minimum=2), "an integer >= 2"
)
positive_float = _argument_type(_number, lambda value: check_positive_float("value", value), "a number > 0")
threshold_value = _argument_type(
    _threshold_text,
    lambda value: check_threshold("value", value),
    f"a number >= 0 or '{THRESHOLD_SILHOUETTE}'",
)
duration_value = _argument_type(
    str, lambda value: check_duration("value", value), "a duration such as 4h or 90m"
)
learning_rates_value = _argument_type(
    str, lambda value: check_learning_rates("value", value), "comma-separated learning rates > 0"
)
study_name_value = _argument_type(
    str,
    lambda value: check_study_name("value", value),
    "a study name like a Hub repo's (letters, digits, - _ .)",
)
non_negative_float = _argument_type(
    _number, lambda value: check_non_negative_float("value", value), "a number >= 0"
)
shard_value = _argument_type(
    _shard_text, lambda value: check_shard("shard", value), "I/N with 0 <= I < N, e.g. 0/2"
)
metric_name = _argument_type(str, lambda value: check_name("metric", value), "a metric name")
revision_value = _argument_type(
    str, lambda value: check_revision("revision", value), "a branch, tag or commit"
)
margin_value = _argument_type(
    _margin_text, lambda value: check_margin("value", value), "'auto' or a number >= 0"
)
output_folder_value = _path_type(_folder_problem)
output_file_value = _path_type(_file_problem)
repository_path_value = _argument_type(
    str, lambda value: check_text("value", value, "a path"), "a repository file path"
)
