"""A small, fully offline model zoo that behaves like a model hub, for tests, the demo and benchmarks.

The two-phase method (Cui et al., arXiv 2404.00069) only works when the model repository has the
structure of a real hub: models pre-trained on different source tasks, so that each transfers
well to some targets and badly to others, the ranking of models changes from one target to the
next, and groups of models behave alike on the benchmark datasets (the clusters of the offline
phase). Real checkpoints are far too big to fine-tune hundreds of times in a test, so this module
builds a miniature hub with that structure on a CPU in seconds:

* a synthetic language whose sentences are generated from *latent factors* (topic, polarity,
  negation, style, setting) out of invented words, so that the relatedness of two tasks is known
  and controlled (it is the overlap of the factors they label);
* small text-classification datasets labelled by one or a combination of those factors
  (``DIR/datasets/<name>/``), and larger *source* datasets used only for pre-training
  (``DIR/sources/<name>/``), all as parquet files with a ``ClassLabel`` feature and a dataset card;
* tiny BERT, DistilBERT and RoBERTa models with real trained tokenizers (WordPiece, byte-level BPE),
  each briefly pre-trained on a different source task (some on two, some longer or shorter, some
  only with masked-language modelling, some not at all), saved with safetensors and a model card
  (``DIR/models/<name>/``);
* a manifest ``DIR/zoo.json`` (:class:`ZooManifest`) describing every model and dataset.

Everything is seeded, so two builds with the same seed give byte-identical datasets and identical
weights. :func:`publish_zoo` pushes a built zoo to a Hub (a local test server, or the real one).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # imported lazily at run time: torch/transformers are slow to import
    import huggingface_hub
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "ZOO_TAG",
    "ZooDataset",
    "ZooManifest",
    "ZooModel",
    "build_zoo",
    "publish_zoo",
]

#: Tag carried by every zoo model and dataset card, so zoo repositories can be listed on a Hub.
ZOO_TAG = "hfselect-zoo"
MANIFEST_NAME = "zoo.json"
MANIFEST_VERSION = 1

# Sequence budget. Sentences are 8-16 words, 14 WordPiece / 19 BPE tokens on average; a handful in
# ten thousand RoBERTa encodings exceed MAX_LENGTH, which fine-tuning recipes commonly use.
MAX_LENGTH = 32
MAX_POSITIONS = 64
# Torch threads used while building: fixed (not "all cores") so that float reductions happen in the
# same order on every machine, which is what makes two builds give identical weights. One thread:
# the matrices of these models are too small to gain from a second one, and on a busy machine two
# threads waiting for each other made steps several times slower.
BUILD_THREADS = 1
PRETRAIN_BATCH = 32
PRETRAIN_LR = 1e-3
WARMUP_STEPS = 20
# Supervised pre-training stops once the source validation accuracy reaches SOURCE_TARGET (checked
# every CHECK_EVERY steps), or at the stage's step limit.
SOURCE_TARGET = 0.97
CHECK_EVERY = 25
# A stage that ends below RETRY_BELOW is restarted from a new initialisation (at most MAX_ATTEMPTS
# runs in all); the manifest reports the kept run.
RETRY_BELOW = 0.85
MAX_ATTEMPTS = 3


# --------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------


@dataclass
class ZooModel:
    """One model of the zoo, as described in the manifest.

    ``sources`` lists the pre-training tasks in the order they were trained (``"mlm"`` for masked
    language modelling on the unlabelled corpus); it is empty for untrained models. ``head`` is
    ``"classification"`` when the saved checkpoint is a sequence classifier (trained ones keep the
    head of their last source task, and ``id2label`` holds that task's class names; untrained ones
    have a random two-label head), ``"mlm"`` for masked-language models (fill-mask checkpoints) and
    ``"none"`` for headless base models (feature extraction). ``stages`` are the training runs in order
    (``"src-a+src-b"`` for two sources trained together, multi-task), ``stage_steps`` their optimizer
    steps and ``pretrain_steps`` the total.
    """

    name: str
    family: str
    architecture: str
    sources: list[str]
    pretrain_steps: int
    stages: list[str]
    stage_steps: list[int]
    num_parameters: int
    head: str
    num_labels: int
    hidden_size: int
    num_layers: int
    tokenizer: str
    source_accuracy: float | None = None
    description: str = ""

    @property
    def pretrained(self) -> bool:
        """Whether the model was trained at all (as opposed to a random initialisation)."""
        return self.pretrain_steps > 0


@dataclass
class ZooDataset:
    """One dataset of the zoo: a target/benchmark dataset or a pre-training source dataset.

    ``factors`` names the latent factors of the synthetic language that the label depends on; two
    datasets are related when they share factors (and, for ``topic``, the same topics).
    """

    name: str
    role: str
    num_classes: int
    label_names: list[str]
    factors: list[str]
    splits: dict[str, int]
    label_noise: float = 0.0
    description: str = ""


@dataclass
class ZooManifest:
    """The contents of a built zoo (``DIR/zoo.json``).

    ``models`` and ``datasets`` (the target/benchmark datasets) are what the rest of hfselect uses;
    ``sources`` are the larger pre-training datasets, kept so model cards can name their training
    data. Folders are ``directory/models/<name>``, ``directory/datasets/<name>`` and
    ``directory/sources/<name>``.
    """

    directory: str
    size: str
    seed: int
    models: list[ZooModel]
    datasets: list[ZooDataset]
    sources: list[ZooDataset] = field(default_factory=list)
    version: int = MANIFEST_VERSION

    def model_path(self, name: str) -> Path:
        """The local folder of model ``name``."""
        return Path(self.directory) / "models" / name

    def dataset_path(self, name: str) -> Path:
        """The local folder of dataset ``name`` (target or source)."""
        sub = "sources" if any(d.name == name for d in self.sources) else "datasets"
        return Path(self.directory) / sub / name

    def to_json(self) -> str:
        """Serialise the manifest to a JSON string (stable key order, so builds compare equal)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, directory: str | Path | None = None) -> ZooManifest:
        """Parse a manifest written by :meth:`to_json`; ``directory`` overrides the stored folder."""
        raw = json.loads(text)
        return cls(
            directory=str(directory) if directory is not None else raw["directory"],
            size=raw["size"],
            seed=int(raw["seed"]),
            models=[ZooModel(**m) for m in raw["models"]],
            datasets=[ZooDataset(**d) for d in raw["datasets"]],
            sources=[ZooDataset(**d) for d in raw.get("sources", [])],
            version=int(raw.get("version", MANIFEST_VERSION)),
        )

    @classmethod
    def load(cls, directory: str | Path) -> ZooManifest:
        """Read ``directory/zoo.json``; the manifest's directory is where it was found (zoos move)."""
        directory = Path(directory)
        return cls.from_json((directory / MANIFEST_NAME).read_text(encoding="utf-8"), directory.resolve())


# --------------------------------------------------------------------------------------------------
# Synthetic language
# --------------------------------------------------------------------------------------------------

TOPICS = ("sports", "cooking", "music", "travel", "science", "politics", "weather", "finance")
POLARITIES = ("negative", "positive")
STYLES = ("formal", "casual", "poetic")
SETTINGS = ("city", "village", "coast", "mountains")

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _stable_seed(*parts: object) -> int:
    """A seed derived from names, stable across processes (``hash()`` is salted per process)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class _Lexicon:
    """The invented words of the synthetic language, grouped by the latent factor they express."""

    topics: tuple[tuple[str, ...], ...]
    polarity: tuple[tuple[str, ...], ...]
    styles: tuple[tuple[str, ...], ...]
    settings: tuple[tuple[str, ...], ...]
    negations: tuple[str, ...]
    fillers: tuple[str, ...]

    @classmethod
    def create(cls, seed: int) -> _Lexicon:
        rng = np.random.default_rng(_stable_seed("lexicon", seed))
        seen: set[str] = set()

        def word() -> str:
            # Two or three CV syllables, sometimes closed by a consonant: pronounceable, (almost
            # always) not English, and long enough that BPE splits some of them, as it does real words.
            while True:
                n = int(rng.integers(2, 4))
                w = "".join(
                    str(rng.choice(list(_CONSONANTS))) + str(rng.choice(list(_VOWELS))) for _ in range(n)
                )
                if rng.random() < 0.3:
                    w += str(rng.choice(list(_CONSONANTS)))
                if w not in seen:
                    seen.add(w)
                    return w

        def group(k: int, n: int) -> tuple[tuple[str, ...], ...]:
            return tuple(tuple(word() for _ in range(n)) for _ in range(k))

        return cls(
            topics=group(len(TOPICS), 24),
            polarity=group(len(POLARITIES), 20),
            styles=group(len(STYLES), 12),
            settings=group(len(SETTINGS), 12),
            # Negation is a prefix glued to the polar word ("un-" in "unhappy"): subword tokenizers
            # then give negated polar words pieces of their own ("##balo", "balo" vs "Ġbalo"), so a
            # tiny model can learn negation from a few thousand sentences, while a model that only
            # saw plain polar words has not learned those pieces.
            negations=("xa", "wo", "ye"),  # x, w, y never occur in other words
            fillers=group(1, 120)[0],
        )


@dataclass(frozen=True)
class _Attrs:
    """Latent attributes of one sentence. ``polarity`` is the surface polarity of its sentiment
    words; a negation prefix on them flips the meaning (see :attr:`sentiment`)."""

    topic: int
    polarity: int
    negated: bool
    style: int
    setting: int

    @property
    def sentiment(self) -> int:
        return self.polarity ^ int(self.negated)


def _sample_attrs(rng: np.random.Generator, topics: Sequence[int], negation_rate: float) -> _Attrs:
    # One draw of uniform floats, scaled to indices: each generator call costs microseconds, and a
    # balanced dataset draws attributes several times per kept sentence.
    u = rng.random(5)
    return _Attrs(
        topic=int(topics[int(u[0] * len(topics))]),
        polarity=int(u[1] * 2),
        negated=bool(u[2] < negation_rate),
        style=int(u[3] * len(STYLES)),
        setting=int(u[4] * len(SETTINGS)),
    )


def _sentence(rng: np.random.Generator, lex: _Lexicon, a: _Attrs) -> str:
    """Render attributes as a sentence of 8-16 words.

    Every factor is expressed in every sentence, so any factor not labelled by a dataset acts as a
    nuisance for it. Signals are deliberately few and partly ambiguous (a distractor word from
    another topic, a single style marker among fillers) so that a model that has not learned the
    relevant words cannot solve a task in a few epochs on a few hundred examples, while a model that
    has seen them in pre-training can.
    """

    def pick(words: Sequence[str], n: int = 1) -> list[str]:
        return [words[int(x * len(words))] for x in rng.random(n)]

    u = rng.random(4)  # the sentence's coin flips, drawn at once
    content = pick(lex.topics[a.topic], 2 + int(u[0] < 0.5))
    if u[1] < 0.6:
        other = (a.topic + 1 + int(rng.integers(len(TOPICS) - 1))) % len(TOPICS)
        content += pick(lex.topics[other])
    content += pick(lex.styles[a.style])
    # The setting is the one factor no zoo model is pre-trained on; one or two words, so that it is
    # learnable from scratch within a short fine-tuning.
    content += pick(lex.settings[a.setting], 1 + int(u[2] < 0.5))
    n_filler = max(0, int(rng.integers(8, 17)) - len(content) - 2)
    words = content + pick(lex.fillers, n_filler)
    words = [words[i] for i in rng.permutation(len(words))]
    # One polar word, sometimes two, all negated or none (a sentence has one sentiment).
    prefix = pick(lex.negations)[0] if a.negated else ""
    for polar in pick(lex.polarity[a.polarity], 1 + int(u[3] < 0.3)):
        words.insert(int(rng.integers(len(words) + 1)), prefix + polar)
    return " ".join(words)


# --------------------------------------------------------------------------------------------------
# Task (dataset) specifications
# --------------------------------------------------------------------------------------------------


# Evaluation splits of the target datasets. 128/256 examples made one test example worth 0.004,
# the 0.005 regret target one example, and the ranking of methods flipped with the numerical noise
# of one machine against another. The test split is scored once per pair: 2,048 examples make one
# worth 0.0005. The validation split is scored every epoch and drives the selection (as a user's
# would), so it grows less: 512. Together they cost about a third of a pair's CPU time next to 5
# epochs on the 512 training examples, which stay small as in the paper's setting.
_EVAL_SPLITS = (("validation", 512), ("test", 2048))


@dataclass(frozen=True)
class _Task:
    """How to generate one labelled dataset from the latent factors."""

    name: str
    role: Literal["target", "source"]
    label_names: tuple[str, ...]
    factors: tuple[str, ...]
    label: Callable[[_Attrs], int]
    topics: tuple[int, ...] = tuple(range(len(TOPICS)))
    negation_rate: float = 0.0
    label_noise: float = 0.0
    splits: tuple[tuple[str, int], ...] = (("train", 512), *_EVAL_SPLITS)
    description: str = ""


def _group_label(groups: Sequence[Sequence[int]]) -> Callable[[_Attrs], int]:
    index = {t: i for i, g in enumerate(groups) for t in g}
    return lambda a: index[a.topic]


_EARLY = (0, 1, 2, 3)
_LATE = (4, 5, 6, 7)
_PAIRS = ((0, 5), (1, 6), (2, 7), (3, 4))
_SOURCE_SPLITS = (("train", 4096), ("validation", 512))

_TASKS: dict[str, _Task] = {
    t.name: t
    for t in [
        # ---- targets / benchmark datasets --------------------------------------------------------
        _Task(
            "topic4",
            "target",
            tuple(TOPICS[i] for i in _EARLY),
            ("topic",),
            _group_label([[t] for t in _EARLY]),
            topics=_EARLY,
            description="Topic of a sentence, four topics (sports, cooking, music, travel).",
        ),
        _Task(
            "topic-late4",
            "target",
            tuple(TOPICS[i] for i in _LATE),
            ("topic",),
            _group_label([[t] for t in _LATE]),
            topics=_LATE,
            description="Topic of a sentence, the four other topics (science, politics, weather, finance).",
        ),
        _Task(
            "topic-pairs4",
            "target",
            tuple(f"{TOPICS[a]}+{TOPICS[b]}" for a, b in _PAIRS),
            ("topic",),
            _group_label(_PAIRS),
            description="Which of four pairs of topics a sentence belongs to (all eight topics).",
        ),
        _Task(
            "topic4-fewshot",
            "target",
            tuple(TOPICS[i] for i in _EARLY),
            ("topic",),
            _group_label([[t] for t in _EARLY]),
            topics=_EARLY,
            label_noise=0.1,
            splits=(("train", 96), *_EVAL_SPLITS),
            description="topic4 with only 96 training examples and 10% label noise.",
        ),
        _Task(
            "polarity",
            "target",
            POLARITIES,
            ("polarity",),
            lambda a: a.polarity,
            description="Sentiment of a sentence without negations.",
        ),
        _Task(
            "polarity-noisy",
            "target",
            POLARITIES,
            ("polarity",),
            lambda a: a.polarity,
            label_noise=0.2,
            splits=(("train", 256), *_EVAL_SPLITS),
            description="Sentiment without negations, 256 training examples, 20% label noise.",
        ),
        _Task(
            "negated-polarity",
            "target",
            POLARITIES,
            ("polarity", "negation"),
            lambda a: a.sentiment,
            negation_rate=0.5,
            description="Sentiment when half of the sentences negate their sentiment word.",
        ),
        _Task(
            "negation",
            "target",
            ("affirmed", "negated"),
            ("negation",),
            lambda a: int(a.negated),
            negation_rate=0.5,
            description="Whether a sentence contains a negation.",
        ),
        _Task(
            "style3",
            "target",
            STYLES,
            ("style",),
            lambda a: a.style,
            description="Register of a sentence: formal, casual or poetic.",
        ),
        _Task(
            "topic-polarity4",
            "target",
            tuple(f"{TOPICS[t]}/{p}" for t in (0, 1) for p in POLARITIES),
            ("topic", "polarity"),
            lambda a: 2 * a.topic + a.polarity,
            topics=(0, 1),
            description="Topic (sports or cooking) and sentiment together, four classes.",
        ),
        _Task(
            "style-polarity6",
            "target",
            tuple(f"{s}/{p}" for s in STYLES for p in POLARITIES),
            ("style", "polarity"),
            lambda a: 2 * a.style + a.polarity,
            description="Register and sentiment together, six classes.",
        ),
        _Task(
            "setting4",
            "target",
            SETTINGS,
            ("setting",),
            lambda a: a.setting,
            description="Where a sentence is set; no zoo model was pre-trained on this factor.",
        ),
        # ---- pre-training sources ----------------------------------------------------------------
        _Task(
            "src-topic8",
            "source",
            TOPICS,
            ("topic",),
            lambda a: a.topic,
            splits=_SOURCE_SPLITS,
            description="Topic of a sentence, all eight topics.",
        ),
        _Task(
            "src-topic-late",
            "source",
            tuple(TOPICS[i] for i in _LATE),
            ("topic",),
            _group_label([[t] for t in _LATE]),
            topics=_LATE,
            splits=_SOURCE_SPLITS,
            description="Topic of a sentence, topics science, politics, weather and finance only.",
        ),
        _Task(
            "src-sentiment",
            "source",
            POLARITIES,
            ("polarity", "negation"),
            lambda a: a.sentiment,
            negation_rate=0.5,
            splits=_SOURCE_SPLITS,
            description="Sentiment, with negations that flip it.",
        ),
        _Task(
            "src-reviews",
            "source",
            POLARITIES,
            ("polarity",),
            lambda a: a.polarity,
            splits=_SOURCE_SPLITS,
            description="Sentiment of sentences without negations.",
        ),
        _Task(
            "src-style",
            "source",
            STYLES,
            ("style",),
            lambda a: a.style,
            splits=_SOURCE_SPLITS,
            description="Register of a sentence.",
        ),
    ]
}


def _generate(task: _Task, lex: _Lexicon, seed: int) -> dict[str, tuple[list[str], list[int]]]:
    """Generate all splits of a task. Each split has its own seeded stream, so a dataset does not
    depend on which other datasets are built (the small zoo is a subset of the full one)."""
    k = len(task.label_names)
    out: dict[str, tuple[list[str], list[int]]] = {}
    for split, n in task.splits:
        rng = np.random.default_rng(_stable_seed("data", seed, task.name, split))
        texts: list[str] = []
        labels: list[int] = []
        for i in range(n):
            # Balanced classes: fix the label first, then draw attributes until they have it.
            want = i % k
            while True:
                a = _sample_attrs(rng, task.topics, task.negation_rate)
                if task.label(a) == want:
                    break
            texts.append(_sentence(rng, lex, a))
            y = want
            if task.label_noise and rng.random() < task.label_noise:
                y = (want + 1 + int(rng.integers(k - 1))) % k  # any other class
            labels.append(y)
        order = rng.permutation(n)
        out[split] = ([texts[i] for i in order], [labels[i] for i in order])
    return out


def _tokenizer_corpus(lex: _Lexicon, seed: int, n: int = 6000) -> list[str]:
    """Unlabelled text for training tokenizers and masked-language modelling (all factors vary)."""
    rng = np.random.default_rng(_stable_seed("corpus", seed))
    return [_sentence(rng, lex, _sample_attrs(rng, range(len(TOPICS)), 0.25)) for _ in range(n)]


# --------------------------------------------------------------------------------------------------
# Model specifications
# --------------------------------------------------------------------------------------------------

# (source task name or "mlm", step limit, stop early once the source task is learned)
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


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _build_environment(n_threads: int) -> Iterator[None]:
    """Fix torch's intra-op threads for the build (determinism, and politeness on shared machines)
    and silence the per-file progress bars of datasets/transformers (dozens of files are written;
    the build reports its own progress). The caller's settings are restored afterwards."""
    import datasets
    import torch
    import transformers

    old_threads = torch.get_num_threads()
    ds_bars = datasets.utils.logging.is_progress_bar_enabled()
    tf_bars = transformers.utils.logging.is_progress_bar_enabled()
    tf_verbosity = transformers.utils.logging.get_verbosity()
    torch.set_num_threads(n_threads)
    datasets.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    # Loading a checkpoint into a model with another head is intended here; its notices are noise.
    transformers.utils.logging.set_verbosity_error()
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        if ds_bars:
            datasets.utils.logging.enable_progress_bar()
        if tf_bars:
            transformers.utils.logging.enable_progress_bar()
        transformers.utils.logging.set_verbosity(tf_verbosity)


class _Log:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[zoo {time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def _train_tokenizers(corpus: list[str], work: Path) -> dict[str, PreTrainedTokenizerBase]:
    """Train the two tokenizers of the zoo on its corpus and wrap them in transformers classes.

    BERT and DistilBERT share one WordPiece vocabulary (as bert-base and distilbert-base do);
    RoBERTa gets its own byte-level BPE, so the zoo has models whose tokenizers disagree.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from tokenizers.implementations import ByteLevelBPETokenizer
    from transformers import BertTokenizerFast, DistilBertTokenizerFast, RobertaTokenizerFast

    # A WordPiece vocabulary is learned with BPE merges (what WordPieceTrainer does too). The
    # trainers number part of the alphabet in hash-map order, which changes from run to run, so the
    # vocabulary is renumbered canonically below; WordPiece only uses the set of pieces.
    wp = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=1024,
            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
            continuing_subword_prefix="##",
            show_progress=False,
        ),
    )
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus,
        vocab_size=1024,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    # Build the transformers tokenizers from the trained files, exactly as a hub checkpoint would
    # be loaded (vocab.txt / vocab.json + merges.txt), so special-token handling is the standard one.
    (work / "wordpiece").mkdir(parents=True, exist_ok=True)
    (work / "bpe").mkdir(parents=True, exist_ok=True)
    vocab_txt = work / "wordpiece" / "vocab.txt"
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = sorted(
        (t for t in wp.get_vocab() if t not in specials),
        key=lambda t: (len(t.removeprefix("##")), t.startswith("##"), t),
    )
    vocab_txt.write_text("".join(t + "\n" for t in specials + pieces), encoding="utf-8")
    bpe.save_model(str(work / "bpe"))
    common = {"model_max_length": MAX_POSITIONS}
    tokenizers = {
        "bert": BertTokenizerFast.from_pretrained(str(work / "wordpiece"), **common),
        "distilbert": DistilBertTokenizerFast.from_pretrained(str(work / "wordpiece"), **common),
        "roberta": RobertaTokenizerFast.from_pretrained(str(work / "bpe"), **common),
    }
    for tokenizer in tokenizers.values():
        # How these were loaded (from a local folder) is no property of the tokenizer; transformers
        # would otherwise write it into every saved tokenizer_config.json.
        for key in ("is_local", "local_files_only", "name_or_path"):
            tokenizer.init_kwargs.pop(key, None)
    return tokenizers


def _config(spec: _ModelSpec, tokenizer: PreTrainedTokenizerBase, label_names: Sequence[str] | None):
    """The model configuration of a zoo model.

    Dropout is off: with a few hundred steps on clean synthetic data it does not regularise
    anything, it only makes fine-tuning noisier (the benchmark scores of similar models must be
    close for the offline clustering to group them) and costs a sizeable part of a CPU step.
    """
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    labels: dict[str, Any] = {}
    if label_names is not None:
        labels = {
            "id2label": dict(enumerate(label_names)),
            "label2id": {n: i for i, n in enumerate(label_names)},
        }
    vocab = len(tokenizer)
    if spec.family == "bert":
        return BertConfig(
            vocab_size=vocab,
            hidden_size=spec.hidden,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            intermediate_size=2 * spec.hidden,
            max_position_embeddings=MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            **labels,
        )
    if spec.family == "distilbert":
        return DistilBertConfig(
            vocab_size=vocab,
            dim=spec.hidden,
            n_layers=spec.layers,
            n_heads=spec.heads,
            hidden_dim=2 * spec.hidden,
            max_position_embeddings=MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id,
            dropout=0.0,
            attention_dropout=0.0,
            seq_classif_dropout=0.0,
            **labels,
        )
    return RobertaConfig(
        vocab_size=vocab,
        hidden_size=spec.hidden,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        intermediate_size=2 * spec.hidden,
        # RoBERTa numbers positions from pad_token_id + 1, hence the two extra positions.
        max_position_embeddings=MAX_POSITIONS + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **labels,
    )


def _encode(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding="longest", return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _lr_lambda(warmup: int) -> Callable[[int], float]:
    # Linear warm-up, then constant: runs may stop at any step (early stopping, weak checkpoints),
    # so the schedule must not depend on a planned length.
    return lambda s: min(1.0, (s + 1) / warmup)


def _optimizer(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    import torch

    # foreach: one kernel per step for all parameters; per-parameter updates dominate a step of a
    # model this small.
    return torch.optim.AdamW(params, lr=PRETRAIN_LR, weight_decay=0.01, foreach=True)


def _batches(n: int, steps: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    import torch

    done = 0
    while done < steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - PRETRAIN_BATCH + 1, PRETRAIN_BATCH):
            if done == steps:
                return
            yield perm[i : i + PRETRAIN_BATCH]
            done += 1


def _train_classifier(
    models: Sequence[PreTrainedModel],
    data: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    max_steps: int,
    gen: torch.Generator,
    *,
    validation: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = (),
    target: float | None = None,
) -> int:
    """Supervised training of one or more classifiers sharing one encoder; returns the steps taken.

    Each step sums the losses of one batch per task (multi-task training: a model trained on two
    sources one after the other forgets the first, and a tiny encoder specialised on one task barely
    learns a second). With ``target``, training stops at the first check (every ``CHECK_EVERY``
    steps) where every task's validation accuracy reaches it: some initialisations learn a source
    task in 100 steps, others need 400, and a fixed budget would leave some models barely trained.
    """
    import torch

    params = list({id(p): p for m in models for p in m.parameters()}.values())
    opt = _optimizer(params)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(WARMUP_STEPS))
    for m in models:
        m.train()
    step = 0
    streams = [_batches(len(labels), max_steps, gen) for _, _, labels in data]
    for batch in zip(*streams, strict=True):
        loss = sum(
            m(input_ids=ids[idx], attention_mask=mask[idx], labels=labels[idx]).loss
            for m, (ids, mask, labels), idx in zip(models, data, batch, strict=True)
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if target is not None and validation and step % CHECK_EVERY == 0:
            if all(_accuracy(m, v) >= target for m, v in zip(models, validation, strict=True)):
                break
            for m in models:
                m.train()
    return step


def _train_mlm(
    model: PreTrainedModel,
    data: tuple[torch.Tensor, torch.Tensor],
    tokenizer: PreTrainedTokenizerBase,
    steps: int,
    gen: torch.Generator,
) -> None:
    """Masked-language modelling with the standard 15% / 80-10-10 recipe."""
    import torch

    ids, mask = data
    special = torch.zeros_like(ids, dtype=torch.bool)
    for t in tokenizer.all_special_ids:
        special |= ids == t
    opt = _optimizer(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(WARMUP_STEPS))
    model.train()
    for idx in _batches(len(ids), steps, gen):
        x, m, sp = ids[idx].clone(), mask[idx], special[idx]
        chosen = (torch.rand(x.shape, generator=gen) < 0.15) & ~sp
        labels = torch.where(chosen, x, torch.full_like(x, -100))
        r = torch.rand(x.shape, generator=gen)
        x[chosen & (r < 0.8)] = tokenizer.mask_token_id
        rand_tok = chosen & (r >= 0.8) & (r < 0.9)
        x[rand_tok] = torch.randint(len(tokenizer), x.shape, generator=gen)[rand_tok]
        loss = model(input_ids=x, attention_mask=m, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)


def _accuracy(model: PreTrainedModel, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
    import torch

    ids, mask, labels = data
    model.eval()
    with torch.no_grad():
        pred = torch.cat(
            [
                model(input_ids=ids[i : i + 256], attention_mask=mask[i : i + 256]).logits.argmax(-1)
                for i in range(0, len(labels), 256)
            ]
        )
    return float((pred == labels).float().mean())


def _base_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.base_model.state_dict().items()}


def _load_encoder(encoder: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a trained encoder's weights into another model's encoder (a new head on top).

    Only a pooler may differ (BERT's classifier has one, its masked-language model does not;
    RoBERTa's base model has one, its classifier does not): any other mismatch is a bug, which a
    plain ``strict=False`` would hide by saving a randomly initialised model.
    """
    result = encoder.load_state_dict(state, strict=False)
    stray = [k for k in (*result.missing_keys, *result.unexpected_keys) if not k.startswith("pooler.")]
    if stray:
        raise RuntimeError(f"encoder weights do not match: {stray[:5]}")


def _build_model(
    spec: _ModelSpec,
    tokenizer: PreTrainedTokenizerBase,
    source_data: Callable[[str, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    corpus_data: Callable[[str], tuple[torch.Tensor, torch.Tensor]],
    seed: int,
    out: Path,
) -> ZooModel:
    """Initialise, pre-train stage by stage, and save one model with its tokenizer and card."""
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

    model_seed = _stable_seed("model", seed, spec.name)
    gen = torch.Generator().manual_seed(model_seed)
    torch.manual_seed(model_seed)  # weight initialisation
    base_state: dict[str, torch.Tensor] | None = None
    last: PreTrainedModel | None = None  # the model of the last stage, with its head
    last_task: _Task | None = None
    source_acc: float | None = None
    stage_steps: list[int] = []  # optimizer steps of each stage
    for source, max_steps, until_learned in spec.stages:
        if source == "mlm":
            last = AutoModelForMaskedLM.from_config(_config(spec, tokenizer, None))
            if base_state is not None:
                _load_encoder(last.base_model, base_state)
            _train_mlm(last, corpus_data(spec.family), tokenizer, max_steps, gen)
            stage_steps.append(max_steps)
            last_task, source_acc = None, None
        else:
            # "a+b": trained on both sources at once, one head each, sharing the encoder; the head
            # of the last source is the one saved.
            tasks = [_TASKS[name] for name in source.split("+")]
            validation = [source_data(spec.family, f"{t.name}/validation") for t in tasks]
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    # A run stuck on a plateau (BERT sometimes merges two classes for hundreds of
                    # steps) is restarted from a new initialisation, as a practitioner would.
                    torch.manual_seed(_stable_seed("retry", seed, spec.name, len(stage_steps), attempt))
                # A new classification head per stage: a stage after another (intermediate-task
                # training) keeps the encoder and replaces the head, as when a hub model is
                # fine-tuned on a second task.
                heads = [
                    AutoModelForSequenceClassification.from_config(_config(spec, tokenizer, t.label_names))
                    for t in tasks
                ]
                if base_state is not None:
                    _load_encoder(heads[0].base_model, base_state)
                for other in heads[1:]:
                    setattr(other, other.base_model_prefix, heads[0].base_model)
                steps = _train_classifier(
                    heads,
                    [source_data(spec.family, f"{t.name}/train") for t in tasks],
                    max_steps,
                    gen,
                    validation=validation,
                    target=SOURCE_TARGET if until_learned else None,
                )
                if not until_learned or all(
                    _accuracy(h, v) >= RETRY_BELOW for h, v in zip(heads, validation, strict=True)
                ):
                    break
            stage_steps.append(steps)
            last, last_task = heads[-1], tasks[-1]
            source_acc = _accuracy(last, validation[-1])
        base_state = _base_state(last)

    if spec.headless:
        # A feature-extraction checkpoint: encoder only, default config labels.
        config = _config(spec, tokenizer, None)
        saved = AutoModel.from_config(config)
        if base_state is not None:
            _load_encoder(saved, base_state)
        head = "none"
    elif last is not None:
        # The last stage's model as trained: a classifier keeps its source head and id2label, a
        # masked-language model its MLM head (a fill-mask checkpoint, like bert-base-uncased).
        saved = last
        head = "classification" if last_task is not None else "mlm"
    else:
        # Untrained: a freshly initialised classifier with default labels, like the many hub
        # checkpoints whose head means nothing.
        saved = AutoModelForSequenceClassification.from_config(_config(spec, tokenizer, None))
        head = "classification"
    saved.config.architectures = [type(saved).__name__]
    saved.eval()
    out.mkdir(parents=True, exist_ok=True)
    saved.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    entry = ZooModel(
        name=spec.name,
        family=spec.family,
        architecture=type(saved).__name__,
        sources=[name for s, _, _ in spec.stages for name in s.split("+")],
        pretrain_steps=sum(stage_steps),
        stages=[s for s, _, _ in spec.stages],
        stage_steps=stage_steps,
        num_parameters=sum(p.numel() for p in saved.parameters()),
        head=head,
        num_labels=saved.config.num_labels if head == "classification" else 0,
        hidden_size=spec.hidden,
        num_layers=spec.layers,
        tokenizer="byte-level-bpe" if spec.family == "roberta" else "wordpiece",
        source_accuracy=None if source_acc is None else round(source_acc, 4),
        description=_model_description(spec, stage_steps),
    )
    (out / "README.md").write_text(_model_card(entry), encoding="utf-8")
    return entry


def _model_description(spec: _ModelSpec, stage_steps: Sequence[int]) -> str:
    if not spec.stages:
        return "Randomly initialised, never trained: a control that knows nothing about the language."
    if spec.name.endswith("-v2"):
        prefix = f"The recipe of {spec.name.removesuffix('-v2')} again, from another initialisation. "
    else:
        prefix = ""
    parts = []
    for (source, _, _), steps in zip(spec.stages, stage_steps, strict=True):
        if "+" in source:
            a, b = source.split("+")
            parts.append(f"classification on {a} and {b} at once (multi-task) for {steps} steps")
        elif source == "mlm":
            parts.append(f"masked-language modelling on the zoo corpus for {steps} steps")
        else:
            parts.append(
                f"classification on {source} ({_TASKS[source].description.rstrip('.')}) for {steps} steps"
            )
    text = prefix + "Pre-trained by " + ", then ".join(parts) + "."
    if spec.headless:
        text += " Saved without its head, as a feature extractor."
    return text


def _yaml_front_matter(data: Any) -> str:
    from huggingface_hub import DatasetCardData, ModelCardData

    assert isinstance(data, (ModelCardData, DatasetCardData))
    return f"---\n{data.to_yaml()}\n---\n"


def _model_card(m: ZooModel) -> str:
    from huggingface_hub import ModelCardData

    real_sources = [s for s in m.sources if s != "mlm"]
    data = ModelCardData(
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag={"classification": "text-classification", "mlm": "fill-mask"}.get(
            m.head, "feature-extraction"
        ),
        tags=[ZOO_TAG, m.family, "synthetic", "pretrained" if m.pretrained else "untrained"],
        datasets=real_sources or None,
    )
    rows = [
        ("family", m.family),
        ("architecture", m.architecture),
        ("tokenizer", m.tokenizer),
        ("hidden size / layers", f"{m.hidden_size} / {m.num_layers}"),
        ("parameters", f"{m.num_parameters:,}"),
        ("pre-training", " -> ".join(m.stages) or "none"),
        ("pre-training steps", str(m.pretrain_steps)),
    ]
    if m.source_accuracy is not None:
        rows.append(("source validation accuracy", f"{m.source_accuracy:.3f}"))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return (
        _yaml_front_matter(data) + f"\n# {m.name}\n\n{m.description}\n\n"
        "A tiny model of the hfselect offline zoo: it reads an invented synthetic language and exists "
        "to exercise model selection (`hfselect zoo build`). It is not useful for real text.\n\n"
        f"| property | value |\n|---|---|\n{table}\n"
    )


def _dataset_card(task: _Task, sizes: dict[str, int]) -> str:
    from huggingface_hub import DatasetCardData

    n = max(sizes.values())
    data = DatasetCardData(
        license="cc0-1.0",
        pretty_name=f"hfselect zoo: {task.name}",
        task_categories=["text-classification"],
        size_categories=["n<1K" if n < 1000 else "1K<n<10K"],
        tags=[ZOO_TAG, "synthetic", *task.factors],
        # Explicit configs and features, as on the Hub: loaders need not guess splits or types.
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{s}.parquet"} for s in sizes],
            }
        ],
        dataset_info={
            "features": [
                {"name": "text", "dtype": "string"},
                {
                    "name": "label",
                    "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(task.label_names)}}},
                },
            ],
            # No "splits" entry: the Hub's schema wants num_bytes with it, and datasets warns about the
            # card without it; the split sizes are in the card's text.
        },
    )
    kind = "pre-training source" if task.role == "source" else "target / benchmark"
    return (
        _yaml_front_matter(data) + f"\n# {task.name}\n\n{task.description}\n\n"
        f"A {kind} dataset of the hfselect offline zoo, in an invented synthetic language whose "
        f"sentences are generated from latent factors. The label depends on: {', '.join(task.factors)}."
        + (
            f" {int(task.label_noise * 100)}% of the labels are flipped at random."
            if task.label_noise
            else ""
        )
        + "\n\nClasses: "
        + ", ".join(f"`{n}`" for n in task.label_names)
        + "\n\nSplits: "
        + ", ".join(f"{s} ({k})" for s, k in sizes.items())
        + "\n"
    )


def _write_dataset(task: _Task, splits: dict[str, tuple[list[str], list[int]]], out: Path) -> ZooDataset:
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=list(task.label_names))})
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split, (texts, labels) in splits.items():
        Dataset.from_dict({"text": texts, "label": labels}, features=features).to_parquet(
            str(out / f"{split}.parquet")
        )
        sizes[split] = len(texts)
    (out / "README.md").write_text(_dataset_card(task, sizes), encoding="utf-8")
    return ZooDataset(
        name=task.name,
        role=task.role,
        num_classes=len(task.label_names),
        label_names=list(task.label_names),
        factors=list(task.factors),
        splits=sizes,
        label_noise=task.label_noise,
        description=task.description,
    )


def build_zoo(
    directory: str | Path,
    size: Literal["small", "full"] = "small",
    *,
    seed: int = 0,
    progress: bool = True,
) -> ZooManifest:
    """Build the offline model zoo into ``directory`` and return its manifest.

    ``size="small"`` (tests, demo) builds 10 models of the three families and 6 target datasets in
    under a minute on a CPU; ``size="full"`` (benchmarks) builds 30 models and 12 target datasets
    in a few minutes. The small zoo is a subset of the full one: the same names have the same
    contents. The build is deterministic for a given ``seed`` (datasets are byte-identical, weights
    identical) and runs torch on one thread. Progress goes to stderr unless ``progress=False``.

    Layout: ``directory/models/<name>/`` (``model.safetensors``, ``config.json``, tokenizer files,
    ``README.md``), ``directory/datasets/<name>/`` and ``directory/sources/<name>/``
    (``<split>.parquet``, ``README.md``), and ``directory/zoo.json``.

    ``directory`` must be missing, empty, or a zoo built before (which is replaced).

    Raises:
        ValueError: ``size`` is neither ``"small"`` nor ``"full"``.
        HfSelectError: ``directory`` holds something other than a zoo.
    """
    return _build(directory, size, seed=seed, progress=progress)


def _build(
    directory: str | Path,
    size: str,
    *,
    seed: int,
    progress: bool,
    only_models: Collection[str] | None = None,
) -> ZooManifest:
    """:func:`build_zoo`, optionally restricted to some of the zoo's models (tests use it to check
    determinism without building every model twice)."""
    from hfselect.errors import HfSelectError

    if size not in ("small", "full"):
        raise ValueError(f"zoo size must be 'small' or 'full', not {size!r}")
    directory = Path(directory).resolve()
    if directory.exists() and any(directory.iterdir()) and not (directory / MANIFEST_NAME).exists():
        # Building replaces models/, datasets/ and sources/: never do that to a folder we did not make.
        raise HfSelectError(f"{directory} is neither empty nor a zoo; build the zoo in a new folder")
    log = _Log(progress)
    specs = [
        s
        for s in _MODELS
        if (size == "full" or s.name in _SMALL_MODELS) and (only_models is None or s.name in only_models)
    ]
    targets = [
        t for t in _TASKS.values() if t.role == "target" and (size == "full" or t.name in _SMALL_DATASETS)
    ]
    needed = {name for s in specs for src, _, _ in s.stages for name in src.split("+") if name != "mlm"}
    sources = [t for t in _TASKS.values() if t.role == "source" and t.name in needed]

    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("models", "datasets", "sources"):
        shutil.rmtree(directory / sub, ignore_errors=True)
    (directory / MANIFEST_NAME).unlink(missing_ok=True)  # no manifest until the zoo is complete

    lex = _Lexicon.create(seed)
    corpus = _tokenizer_corpus(lex, seed)
    with _build_environment(BUILD_THREADS):
        import torch

        with tempfile.TemporaryDirectory(prefix="hfselect-zoo-") as work:
            tokenizers = _train_tokenizers(corpus, Path(work))
        log(
            f"tokenizers trained (wordpiece {len(tokenizers['bert'])}, bpe {len(tokenizers['roberta'])} tokens)"
        )

        dataset_entries = []
        source_entries = []
        generated: dict[str, dict[str, tuple[list[str], list[int]]]] = {}
        for task in targets + sources:
            generated[task.name] = _generate(task, lex, seed)
            sub = "datasets" if task.role == "target" else "sources"
            entry = _write_dataset(task, generated[task.name], directory / sub / task.name)
            (dataset_entries if task.role == "target" else source_entries).append(entry)
        log(f"{len(targets)} datasets and {len(sources)} pre-training sources written")

        # Tokenised data is cached per tokenizer family: several models share each source.
        cache: dict[tuple[str, str], Any] = {}

        def source_data(family: str, key: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if (family, key) not in cache:
                name, split = key.split("/")
                texts, labels = generated[name][split]
                ids, mask = _encode(tokenizers[family], texts)
                cache[family, key] = (ids, mask, torch.tensor(labels))
            return cache[family, key]

        def corpus_data(family: str) -> tuple[torch.Tensor, torch.Tensor]:
            if (family, "corpus") not in cache:
                cache[family, "corpus"] = _encode(tokenizers[family], corpus)
            return cache[family, "corpus"]

        model_entries = []
        for spec in specs:
            t0 = time.perf_counter()
            entry = _build_model(
                spec,
                tokenizers[spec.family],
                source_data,
                corpus_data,
                seed,
                directory / "models" / spec.name,
            )
            model_entries.append(entry)
            acc = "" if entry.source_accuracy is None else f", source accuracy {entry.source_accuracy:.3f}"
            log(f"{spec.name}: {entry.pretrain_steps} steps{acc} ({time.perf_counter() - t0:.1f}s)")

    manifest = ZooManifest(
        directory=str(directory),
        size=size,
        seed=seed,
        models=model_entries,
        datasets=dataset_entries,
        sources=source_entries,
    )
    (directory / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    log(f"zoo written to {directory}")
    return manifest


# --------------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------------


def publish_zoo(
    directory: str | Path,
    *,
    organization: str = "hfselect-zoo",
    api: huggingface_hub.HfApi | None = None,
    private: bool = False,
) -> list[str]:
    """Push every model, dataset and pre-training source of a built zoo to a Hub.

    Each folder becomes one repository, ``<organization>/<name>`` (models as model repositories,
    target and source datasets as dataset repositories), created if missing and updated with one
    commit otherwise. Model cards name their training data as ``<organization>/<source>``, so the
    links resolve on that Hub. ``api`` selects the Hub (endpoint and token); by default the real Hub
    with the user's login. Returns the repository ids, models first.

    Raises:
        HubError: A repository could not be created or uploaded (one line, naming it).
    """
    from huggingface_hub import HfApi, ModelCard

    from hfselect.errors import HubError

    manifest = ZooManifest.load(directory)
    api = api if api is not None else HfApi()
    jobs = [(m.name, "model", manifest.model_path(m.name)) for m in manifest.models] + [
        (d.name, "dataset", manifest.dataset_path(d.name)) for d in [*manifest.datasets, *manifest.sources]
    ]
    pushed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hfselect-zoo-publish-") as scratch:
        for name, repo_type, folder in jobs:
            repo_id = f"{organization}/{name}"
            if repo_type == "model":
                # Upload a copy whose card points at the published source datasets.
                card = ModelCard.load(folder / "README.md")
                if card.data.datasets:
                    card.data.datasets = [f"{organization}/{d}" for d in card.data.datasets]
                staged = Path(scratch) / name
                shutil.copytree(folder, staged)
                card.save(staged / "README.md")
                folder = staged
            try:
                api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
                api.upload_folder(
                    repo_id=repo_id,
                    repo_type=repo_type,
                    folder_path=str(folder),
                    commit_message=f"Upload {name} from the hfselect zoo",
                )
            except Exception as error:  # HTTP errors, refused or dropped connections
                raise HubError(f"cannot publish {repo_type} {repo_id} to {api.endpoint}: {error}") from error
            pushed.append(repo_id)
    return pushed
