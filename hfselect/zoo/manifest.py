"""The zoo's manifest, ``DIR/zoo.json``: every model and dataset of a built zoo."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time: torch/transformers are slow to import
    pass


#: Tag carried by every zoo model and dataset card, so zoo repositories can be listed on a Hub.
ZOO_TAG = "hfselect-zoo"
MANIFEST_NAME = "zoo.json"
MANIFEST_VERSION = 1


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
