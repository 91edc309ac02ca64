"""The zoo's models: architecture, size and the pre-training stages of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # imported lazily at run time: torch/transformers are slow to import
    pass


Stage = tuple[str, int, bool]


@dataclass(frozen=True)
class _ModelSpec:
    name: str
    family: Literal["bert", "distilbert", "roberta"]
    stages: tuple[Stage, ...] = ()
    headless: bool = False
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    description: str = ""


# Step limits per source (batch 32). Supervised stages normally stop well before the limit, when
# the source validation accuracy reaches SOURCE_TARGET (a few seconds on a CPU); topic needs the
# most steps: eight classes, and most sentences carry a distractor word of another topic.
_STEP_LIMITS = {
    "src-topic8": 600,
    "src-topic-late": 400,
    "src-sentiment": 400,
    "src-reviews": 300,
    "src-style": 300,
    "mlm": 300,
}
# "Weak" checkpoints stop after a fixed number of steps, with their source task about half learned
# (the easy sentiment task after 40 steps, eight-way topic after 100).
_WEAK = {"src-reviews": 40, "src-topic8": 100}


def _m(
    family: Literal["bert", "distilbert", "roberta"], tag: str, *stages: str | tuple[str, int], **kw: Any
) -> _ModelSpec:
    # A bare source name trains until learned; (source, steps) trains exactly that many steps.
    full = tuple(
        (s, max(_STEP_LIMITS[n] for n in s.split("+")), s != "mlm") if isinstance(s, str) else (*s, False)
        for s in stages
    )
    if family != "bert":
        kw.setdefault("hidden", 48)
    return _ModelSpec(f"tiny-{family}-{tag}", family, full, **kw)


# The zoo. Families differ in size (BERT 64 wide, DistilBERT and RoBERTa 48) and tokenizer (RoBERTa
# uses byte-level BPE), and each model has its own pre-training history, so that every target has
# different winners: topic models win topic targets, sentiment models sentiment targets, and so on.
# The "-v2" models repeat a recipe from another initialisation (its seed comes from the name), as
# popular recipes are fine-tuned many times over on a real hub: they make the groups of alike
# models that the offline clustering should find.
_MODELS: list[_ModelSpec] = [
    # BERT family
    _m("bert", "random"),
    _m("bert", "topic8", "src-topic8"),
    _m("bert", "sentiment", "src-sentiment"),
    _m("bert", "style", "src-style"),
    _m("bert", "topic8-sentiment", "src-topic8+src-sentiment"),
    _m("bert", "topic-late", "src-topic-late"),
    _m("bert", "reviews-weak", ("src-reviews", _WEAK["src-reviews"])),
    _m("bert", "mlm", "mlm"),
    _m("bert", "style-headless", "src-style", headless=True),
    _m("bert", "topic8-v2", "src-topic8"),
    # DistilBERT family
    _m("distilbert", "random"),
    _m("distilbert", "topic8", "src-topic8"),
    _m("distilbert", "sentiment", "src-sentiment"),
    _m("distilbert", "style", "src-style"),
    _m("distilbert", "mlm-topic-late", "mlm", "src-topic-late"),
    _m("distilbert", "reviews", "src-reviews"),
    _m("distilbert", "topic8-weak", ("src-topic8", _WEAK["src-topic8"])),
    _m("distilbert", "mlm", "mlm"),
    _m("distilbert", "sentiment-headless", "src-sentiment", headless=True),
    _m("distilbert", "topic8-v2", "src-topic8"),
    # RoBERTa family
    _m("roberta", "random", headless=True),
    _m("roberta", "topic8", "src-topic8"),
    _m("roberta", "sentiment", "src-sentiment"),
    _m("roberta", "style", "src-style"),
    _m("roberta", "style-sentiment", "src-style+src-sentiment"),
    _m("roberta", "topic-late", "src-topic-late"),
    _m("roberta", "reviews", "src-reviews"),
    _m("roberta", "mlm", "mlm"),
    _m("roberta", "topic8-headless", "src-topic8", headless=True),
    _m("roberta", "sentiment-v2", "src-sentiment"),
]

_SMALL_MODELS = (
    "tiny-bert-random",
    "tiny-bert-topic8",
    "tiny-bert-sentiment",
    "tiny-distilbert-topic8",
    "tiny-distilbert-style",
    "tiny-distilbert-sentiment-headless",
    "tiny-roberta-random",
    "tiny-roberta-style",
    "tiny-roberta-sentiment",
    "tiny-roberta-style-sentiment",
)
# Six targets, not fewer: the paper's model distance averages the 5 largest score differences, so
# two models are only comparable (clusterable) on more than five shared datasets.
_SMALL_DATASETS = ("topic4", "topic-late4", "polarity", "negated-polarity", "style3", "topic-polarity4")
