"""A benchmark protocol: how a result was obtained, and the key that tells protocols apart."""

from __future__ import annotations

import dataclasses
import hashlib
import json


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a benchmark result was obtained; results are only comparable under one protocol.

    ``key`` identifies the protocol in the results and curves tables, so a pair benchmarked again
    under a different protocol gets a row of its own and resuming can tell what is already done.
    """

    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    train_samples: int | None = None
    eval_samples: int | None = None
    max_length: int | None = None
    metric: str = "accuracy"

    @property
    def key(self) -> str:
        """A short stable identifier of this protocol ("imported" when nothing is known)."""
        fields = dataclasses.asdict(self)
        if all(value is None for name, value in fields.items() if name != "metric"):
            return "imported" if self.metric == "accuracy" else f"imported-{self.metric}"
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


IMPORTED = Protocol()
