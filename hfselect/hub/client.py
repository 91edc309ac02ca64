"""Talking to the Hugging Face Hub: bounded retries and errors that say what to do.

huggingface_hub already retries some requests; this module adds what a long-running crawl or
benchmark needs on top: a retry loop bounded in *time* that honours ``Retry-After``, a way to
tell a transient failure from a permanent one, and one-line messages for the failures a user can
act on (unreachable Hub, offline mode, bad token, missing repo). Messages never contain a token.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from huggingface_hub import constants
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hfselect.errors import HubError

T = TypeVar("T")

logger = logging.getLogger(__name__)

RETRY_STATUS_CODES = frozenset({429, 500, 502, 503, 504})


def _transport_errors() -> tuple[type[BaseException], ...]:
    # huggingface_hub 2 talks HTTP through httpx2, version 1 through httpx: whichever is installed
    # raises the connection failures, so catch the transport errors of both.
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for client in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(client).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()
"""Exceptions meaning "no answer came" (refused, dropped, timed out), whatever HTTP client is in use."""


def status_code(error: BaseException) -> int | None:
    """The HTTP status of a Hub error, if it carries a response."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_network_error(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) is a connection failure rather than an answer."""
    return any(
        isinstance(link, TRANSPORT_ERRORS) and not isinstance(link, OfflineModeIsEnabled)
        for link in _chain(error)
    )


def is_transient(error: BaseException) -> bool:
    """True for failures worth retrying: 429, 5xx and dropped or refused connections."""
    if isinstance(
        error, (OfflineModeIsEnabled, RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError)
    ):
        return False
    if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
        return False
    code = status_code(error)
    if code is not None:
        return code in RETRY_STATUS_CODES
    return is_network_error(error)


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's ``Retry-After`` delay in seconds, when the error's response has one."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def call_with_retries(
    function: Callable[[], T],
    *,
    max_time_s: float = 60.0,
    base_delay_s: float = 0.5,
    max_delay_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    waiting_for: str | None = None,
) -> T:
    """Call ``function`` until it succeeds, retrying transient failures for at most ``max_time_s``.

    The delay doubles from ``base_delay_s`` (with jitter) up to ``max_delay_s``; a ``Retry-After``
    header replaces it. When the next wait would pass the time budget, the last error is raised.
    With ``waiting_for`` (what the call fetches, e.g. ``"model org/name"``), the first retry logs one
    warning saying what is being waited for and for how long, so a long wait is never silent.
    """
    deadline = time.monotonic() + max_time_s
    delay = base_delay_s
    announced = waiting_for is None
    while True:
        try:
            return function()
        except Exception as error:
            if not is_transient(error):
                raise
            wait = retry_after_seconds(error)
            if wait is None:
                wait = delay * (1 + random.random() / 4)
                delay = min(max_delay_s, delay * 2)
            if time.monotonic() + wait > deadline:
                raise
            if not announced:
                announced = True
                logger.warning(
                    "waiting for %s: %s; retrying for up to %.0f s",
                    waiting_for,
                    describe_hub_error(error, what=str(waiting_for)),
                    max(0.0, deadline - time.monotonic()),
                )
            sleep(wait)


@contextlib.contextmanager
def notice_if_slow(waiting_for: str, *, after_s: float = 5.0) -> Iterator[None]:
    """Log one warning if the block is still running after ``after_s`` seconds: what it waits for.

    For calls whose retries happen inside a client library (``datasets.load_dataset``), so that a
    Hub that does not answer is not waited for in silence.
    """
    timer = threading.Timer(
        after_s,
        lambda: logger.warning(
            "still waiting for %s after %g s (the Hub at %s may be unreachable; the client retries)",
            waiting_for,
            after_s,
            constants.ENDPOINT,
        ),
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def describe_hub_error(error: BaseException, *, what: str = "the Hub") -> str:
    """One line telling the user what went wrong talking to the Hub and what to do about it."""
    endpoint = constants.ENDPOINT
    code = status_code(error)
    if isinstance(error, OfflineModeIsEnabled) or (
        isinstance(error, LocalEntryNotFoundError) and constants.HF_HUB_OFFLINE
    ):
        return f"cannot reach {what}: offline mode is on (HF_HUB_OFFLINE=1); unset it to use the Hub"
    if isinstance(error, GatedRepoError):
        return f"{what} is gated: accept its conditions on the Hub and log in with `hf auth login`"
    if isinstance(error, RepositoryNotFoundError):
        return f"{what} was not found on {endpoint} (or is private and your token cannot see it)"
    if isinstance(error, RevisionNotFoundError):
        return f"{what}: revision not found on {endpoint}"
    if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
        return f"{what}: file not found on {endpoint}"
    if code == 401:
        return (
            f"{endpoint} rejected the token (401 Unauthorized): log in again with `hf auth login` "
            "or set a valid HF_TOKEN"
        )
    if code == 403:
        return (
            f"{endpoint} refused the request (403 Forbidden): your token lacks the permission "
            "needed; create a token with write access at https://huggingface.co/settings/tokens"
        )
    if code == 429:
        return f"{endpoint} kept rate-limiting the requests (429); wait a few minutes and run again"
    if code is not None and code >= 500:
        return f"{endpoint} answered with a server error ({code}) for {what}; try again later"
    if is_network_error(error):
        return (
            f"cannot reach the Hub at {endpoint}: check your network connection "
            "(or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to work from the local cache"
        )
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{what}: {text}"


def hub_error(error: BaseException, *, what: str = "the Hub") -> HubError:
    """Wrap a Hub failure into a :class:`HubError` carrying :func:`describe_hub_error`'s line."""
    return HubError(describe_hub_error(error, what=what))
