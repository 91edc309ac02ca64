"""Quiet third-party logs: hfselect prints what matters (used by the CLI and the benchmarks)."""

from __future__ import annotations

import os


def quiet_libraries() -> None:
    """Silence the libraries' own logs and per-step progress bars; hfselect prints what matters.

    Failures end up in hfselect's summaries or one-line errors; the clients' per-retry warnings,
    weight-loading reports and tokenisation bars would bury them. ``--debug`` keeps them all.
    """
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()
    import huggingface_hub.utils

    huggingface_hub.utils.disable_progress_bars()
    import datasets
    import transformers

    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
