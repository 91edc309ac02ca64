"""The recall rules by name, and the one default every entry point uses.

Kept apart from :mod:`hfselect.core.recall` so that the CLI can name them without importing the
clustering (and scikit-learn) before a command runs.
"""

from __future__ import annotations

from hfselect.config import DEFAULT_SCOPE, RecallScope

__all__ = ["DEFAULT_SCOPE", "RULE_SUMMARIES", "SCOPES", "RecallScope"]

SCOPES: tuple[RecallScope, ...] = ("evidence", "representatives", "all", "every")

# One sentence per rule: how a model's recall score is computed (the card's recall paragraph).
RULE_SUMMARIES: dict[str, str] = {
    "evidence": (
        "A model's recall score is two thirds its standardized proxy rank on the target plus one third "
        "its benchmark evidence: its standardized ranks on the benchmark datasets, each weighted by how well "
        "that dataset's scores correlate with the target's proxy scores (a model without benchmark "
        "results keeps its proxy part alone; one without a proxy takes its cluster representative's)."
    ),
    "every": (
        "A model's recall score is its own proxy score on the target; ties go to the better mean "
        "benchmark score."
    ),
    "representatives": (
        "A model's recall score is its mean benchmark score weighted by a proxy score on the target "
        "(the paper's rule): its cluster representative's proxy for a clustered model, its similarity "
        "to every representative for a model alone in its cluster."
    ),
    "all": (
        "A model's recall score is its mean benchmark score weighted by its own proxy score on the "
        "target (the paper's released code); a model alone in its cluster is weighted by its "
        "similarity to every cluster representative."
    ),
}
