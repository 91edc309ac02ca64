"""hfselect.hub.client: which failures are retried, under whichever HTTP client huggingface_hub uses."""

from __future__ import annotations

import pytest
from huggingface_hub.errors import OfflineModeIsEnabled, RepositoryNotFoundError

from hfselect.hub.client import TRANSPORT_ERRORS, is_network_error, is_transient


def test_transport_errors_cover_the_installed_client() -> None:
    import huggingface_hub

    client = "httpx2" if int(huggingface_hub.__version__.split(".")[0]) >= 2 else "httpx"
    module = pytest.importorskip(client)
    assert module.TransportError in TRANSPORT_ERRORS
    refused = module.ConnectError("connection refused")
    assert is_network_error(refused) and is_transient(refused)
    # Wrapped by the caller: the cause still counts.
    try:
        try:
            raise refused
        except module.ConnectError as error:
            raise RuntimeError("download failed") from error
    except RuntimeError as wrapped:
        assert is_network_error(wrapped)


def test_answers_and_offline_mode_are_not_network_failures() -> None:
    offline = OfflineModeIsEnabled("offline")
    assert not is_network_error(offline) and not is_transient(offline)
    missing = RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # a 404 answer, without a response
    assert not is_transient(missing)
    assert is_network_error(TimeoutError()) and is_transient(ConnectionResetError())


def test_a_retried_call_says_once_what_it_waits_for(caplog: pytest.LogCaptureFixture) -> None:
    from hfselect.hub.client import call_with_retries

    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 4:
            raise ConnectionError("connection refused")
        return "answer"

    with caplog.at_level("WARNING", logger="hfselect.hub.client"):
        answer = call_with_retries(flaky, max_time_s=30, sleep=lambda _: None, waiting_for="model org/name")
    assert answer == "answer" and len(attempts) == 4
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("waiting for model org/name: ")
    assert "retrying for up to" in lines[0]
    caplog.clear()
    attempts.clear()
    call_with_retries(flaky, max_time_s=30, sleep=lambda _: None)  # nothing asked: silent, as before
    assert not caplog.records


def test_a_slow_call_says_what_it_waits_for_and_a_fast_one_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import time

    from hfselect.hub.client import notice_if_slow

    with caplog.at_level("WARNING", logger="hfselect.hub.client"):
        with notice_if_slow("the Hub to load dataset org/data", after_s=0.05):
            pass
        time.sleep(0.1)
        assert not caplog.records  # finished in time: cancelled, silent
        with notice_if_slow("the Hub to load dataset org/data", after_s=0.05):
            deadline = time.monotonic() + 5.0
            while not caplog.records and time.monotonic() < deadline:
                time.sleep(0.01)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("still waiting for the Hub to load dataset org/data after 0.05 s")
