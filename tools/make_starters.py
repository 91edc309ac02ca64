"""Build hfselect's starter repositories (package data) from the paper's released matrices.

Cui et al., "A Two-Phase Recall-and-Select Framework for Fast Model Selection" (arXiv 2404.00069)
released two performance matrices (MIT licence, copyright 2023 plasware): 39 Hub NLP models x 21
benchmark datasets and 30 vision models x 6 datasets. This script turns them into the files
``hfselect repo init --starter NAME`` reads, ``hfselect/starter_data/NAME.json``:

* the models as Hub ids (the release writes ``/`` as ``--``), in the release's column order;
* the datasets, each with the paper's name, the Hub id ``load_dataset`` accepts (``ID`` or
  ``ID:CONFIG``; ``null`` where the paper's name does not pin one down, e.g. a dataset that needs
  a config the paper does not state), its metric and a note on what is uncertain. The mapping
  tables below are the only judgement calls; everything else is copied from the release;
* the scores, one row per dataset in the release's row order, ``null`` for an empty cell.

Run ``python tools/make_starters.py`` to (re)write the files, ``--check`` to fail when the shipped
files differ from what the release gives (the test suite does this when the release is at hand).
The release is looked up next to the checkout (``../shared/anchors/two-phase-selection``);
``--anchors DIR`` overrides.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "hfselect" / "starter_data"
DEFAULT_ANCHORS = ROOT.parent / "shared" / "anchors" / "two-phase-selection"
FORMAT_VERSION = 1

CITATION = (
    'Jianwei Cui, Wenhang Shi, Honglin Tao, Wei Lu, Xiaoyong Du. "A Two-Phase Recall-and-Select '
    'Framework for Fast Model Selection." arXiv:2404.00069 (2024).'
)
RELEASE = "https://github.com/plasware/two-phase-selection"
LICENSE_NOTE = "MIT License, Copyright (c) 2023 plasware (LICENSE-two-phase-selection.txt beside this file)"
PROTOCOL_NOTE = (
    "published, no learning curves: final test scores of each model fine-tuned on each dataset, as "
    "released by the paper's authors (their fine-tuning protocol; hfselect did not run it)"
)

# Paper name -> (Hub id for load_dataset or None, metric, note). None: the name does not pin down
# one loadable Hub id (the dataset needs a config the paper does not state).
NLP_DATASETS: dict[str, tuple[str | None, str, str]] = {
    "cola": (
        "nyu-mll/glue:cola",
        "mcc",
        "scores include a negative value (-0.04): Matthews correlation, GLUE's CoLA metric, not accuracy",
    ),
    "sst2": ("nyu-mll/glue:sst2", "accuracy", ""),
    "mrpc": ("nyu-mll/glue:mrpc", "accuracy", ""),
    "qqp": ("nyu-mll/glue:qqp", "accuracy", ""),
    "qnli": ("nyu-mll/glue:qnli", "accuracy", ""),
    "rte": ("nyu-mll/glue:rte", "accuracy", "also in SuperGLUE (aps/super_glue:rte, the same data)"),
    "copa": ("aps/super_glue:copa", "accuracy", "a two-choice task (premise, choice1, choice2)"),
    "wic": ("aps/super_glue:wic", "accuracy", ""),
    "cb": ("aps/super_glue:cb", "accuracy", ""),
    "imdb": ("stanfordnlp/imdb", "accuracy", ""),
    "yelp_review_full": ("Yelp/yelp_review_full", "accuracy", ""),
    "yahoo_answers_topics": ("community-datasets/yahoo_answers_topics", "accuracy", ""),
    "dbpedia_14": ("fancyzhx/dbpedia_14", "accuracy", ""),
    "wnli": ("nyu-mll/glue:wnli", "accuracy", ""),
    "xnli": (
        None,
        "accuracy",
        "facebook/xnli needs a language config (en, fr, ..., all_languages); the paper does not say which",
    ),
    "anli": (
        "facebook/anli",
        "accuracy",
        "its rounds are splits (train_r1 ... test_r3); the paper does not say which it used",
    ),
    "app_reviews": ("sealuzh/app_reviews", "accuracy", "label: the star rating"),
    "stsb": (
        "nyu-mll/glue:stsb",
        "accuracy",
        "a regression task (similarity 0-5); how the paper scored it is not stated",
    ),
    "trec": ("CogComp/trec", "accuracy", "coarse_label or fine_label: the paper does not say"),
    "sick": ("RobZamp/sick", "accuracy", "entailment label assumed (the set also has relatedness scores)"),
    "financial_phrasebank": (
        None,
        "accuracy",
        "takala/financial_phrasebank needs an agreement config (sentences_allagree ... sentences_50agree); "
        "the paper does not say which",
    ),
}
VISION_DATASETS: dict[str, tuple[str | None, str, str]] = {
    "food101": ("ethz/food101", "accuracy", ""),
    "Matthijs/snacks": ("Matthijs/snacks", "accuracy", ""),
    "alkzar90/CC6204-Hackaton-Cub-Dataset": ("alkzar90/CC6204-Hackaton-Cub-Dataset", "accuracy", ""),
    "cats_vs_dogs": ("microsoft/cats_vs_dogs", "accuracy", ""),
    "cifar10": ("uoft-cs/cifar10", "accuracy", ""),
    "mnist": ("ylecun/mnist", "accuracy", ""),
}

# Starter name -> (matrix file, dataset list, dataset table, modality, the paper's clustering threshold).
STARTERS: dict[str, tuple[str, str, dict[str, tuple[str | None, str, str]], str, float]] = {
    "paper-nlp": ("nlp_matrix.tsv", "nlp_datasets.txt", NLP_DATASETS, "text", 0.09),
    "paper-vision": ("cv_matrix.tsv", "cv_datasets.txt", VISION_DATASETS, "image", 0.03),
}


def read_release(
    anchors: Path, matrix_file: str, datasets_file: str
) -> tuple[list[str], list[str], list[list]]:
    """The release's model ids (``--`` -> ``/``), dataset names and score rows (None: empty cell)."""
    lines = [line for line in (anchors / matrix_file).read_text().splitlines() if line.strip()]
    names = [line.strip() for line in (anchors / datasets_file).read_text().splitlines() if line.strip()]
    models = [cell.strip().replace("--", "/") for cell in lines[0].split("\t")]
    rows = [[float(cell) if cell.strip() else None for cell in line.split("\t")] for line in lines[1:]]
    if len(rows) != len(names) or any(len(row) != len(models) for row in rows):
        raise SystemExit(f"{matrix_file}: {len(rows)} score lines for {len(names)} datasets, or ragged rows")
    return models, names, rows


def build_starter(name: str, anchors: Path) -> dict[str, Any]:
    """One starter as the JSON document that ships in ``hfselect/starter_data``."""
    matrix_file, datasets_file, table, modality, threshold = STARTERS[name]
    models, names, rows = read_release(anchors, matrix_file, datasets_file)
    unknown = [dataset for dataset in names if dataset not in table]
    if unknown:
        raise SystemExit(f"no Hub mapping for {', '.join(unknown)}: add them to the tables in {__file__}")
    datasets = []
    for paper_name in names:
        hub_id, metric, note = table[paper_name]
        datasets.append({"paper_name": paper_name, "hub_id": hub_id, "metric": metric, "note": note})
    return {
        "format": FORMAT_VERSION,
        "name": name,
        "modality": modality,
        "threshold": threshold,
        "source": f"{CITATION} Released performance matrix {matrix_file} ({RELEASE}).",
        "license": LICENSE_NOTE,
        "protocol": PROTOCOL_NOTE,
        "models": models,
        "datasets": datasets,
        "scores": rows,
    }


def render(document: dict[str, Any]) -> str:
    """JSON with one line per model, dataset and score row: compact, and diffs read line by line."""
    lines = ["{"]
    scalars = [key for key in document if key not in ("models", "datasets", "scores")]
    for key in scalars:
        lines.append(f"  {json.dumps(key)}: {json.dumps(document[key])},")
    for key in ("models", "datasets", "scores"):
        items = [json.dumps(item, separators=(", ", ": ")) for item in document[key]]
        lines.append(f"  {json.dumps(key)}: [")
        lines.extend(f"    {item}," for item in items[:-1])
        lines.append(f"    {items[-1]}")
        lines.append("  ]," if key != "scores" else "  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) every starter file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS, help="the release's folder")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the starter files go")
    parser.add_argument("--check", action="store_true", help="fail if the shipped files differ")
    args = parser.parse_args(argv)
    if not args.anchors.is_dir():
        print(f"skipped: anchors not found at {args.anchors}")
        return 0
    stale = []
    for name in STARTERS:
        text = render(build_starter(name, args.anchors))
        path = args.output / f"{name}.json"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python tools/make_starters.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
