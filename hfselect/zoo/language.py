"""A synthetic language: sentences generated from latent factors (topic, polarity, negation, style,
setting) out of invented words, so that how related two tasks are is known and controlled."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported lazily at run time: torch/transformers are slow to import
    pass


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
