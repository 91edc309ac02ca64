"""Building a zoo: writing its datasets (with cards), pre-training its models, and its manifest."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hfselect.zoo.cards import _dataset_card
from hfselect.zoo.language import _Lexicon
from hfselect.zoo.manifest import MANIFEST_NAME, ZooDataset, ZooManifest
from hfselect.zoo.recipes import _MODELS, _SMALL_DATASETS, _SMALL_MODELS
from hfselect.zoo.tasks import _TASKS, _generate, _Task, _tokenizer_corpus
from hfselect.zoo.training import (
    BUILD_THREADS,
    _build_environment,
    _build_model,
    _encode,
    _Log,
    _train_tokenizers,
)

if TYPE_CHECKING:  # imported lazily at run time: torch/transformers are slow to import
    import torch


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
