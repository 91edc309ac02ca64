"""The model and dataset cards of the zoo (README.md with YAML front matter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hfselect.zoo.manifest import ZOO_TAG, ZooModel
from hfselect.zoo.recipes import _ModelSpec
from hfselect.zoo.tasks import _TASKS, _Task


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
