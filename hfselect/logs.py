"""Quiet third-party logs: hfselect prints what matters (used by the CLI and the benchmarks)."""

from __future__ import annotations

import logging
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
    # The csv/json builders log a file they cannot read at ERROR, then raise: hfselect reports that
    # error as one line naming the file (hfselect.data.raw), so theirs would be a second, rawer one.
    logging.getLogger("datasets.packaged_modules").setLevel(logging.CRITICAL)
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
