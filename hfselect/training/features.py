"""A model's outputs on a target sample: pooled features and, with a trained head, class probabilities.

:func:`load_model_for_outputs` loads a model (and its tokenizer or image processor) with
hfselect's safety defaults, keeping a trained classification head when the checkpoint has one;
:func:`compute_model_outputs` runs it over the sample, batched through Accelerate (one device, or
several processes under ``accelerate launch`` with identical results), and returns
:class:`~hfselect.core.proxies.ModelOutputs`. ``one_at_a_time=True`` is the unbatched, unpadded
reference path.

Feature pooling. Text models: the **mean of the last layer's hidden states over the real (non
padding) tokens**. It is defined for every architecture (encoders whose first token was never
trained as a summary, such as RoBERTa or DistilBERT without fine-tuning, and decoders, whose first
token sees nothing of the text), it does not depend on the padding side, and a padded batch gives
the same features as one unpadded example. Image models: the model's own pooled output
(``pooler_output``) when it returns one; otherwise (models with a classification head) the mean of
the last hidden state over spatial positions (what ResNet/ConvNeXt poolers compute) or over tokens.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import datasets
import numpy as np

from hfselect.config import DEFAULT_MAX_LENGTH
from hfselect.core.proxies import ModelOutputs
from hfselect.data import ClassificationData, ColumnInfo, DatasetSpec, preprocess_for_model
from hfselect.errors import HfSelectError, ModelLoadError
from hfselect.models import load_config, load_pretrained, load_tokenizer_or_processor

if TYPE_CHECKING:  # heavy imports, only needed when models actually run
    import torch
    from accelerate import Accelerator

__all__ = ["OUTPUTS_VERSION", "LoadedModel", "compute_model_outputs", "load_model_for_outputs"]

#: Part of every cached score's dataset fingerprint: bump it when the way model outputs are
#: computed changes (pooling, dtype, preprocessing), so stale cached scores are not served.
OUTPUTS_VERSION = "mean-pool-v1"

# Architecture name suffixes of a trained classification head, per input modality.
_HEAD_SUFFIXES = {"text": "ForSequenceClassification", "image": "ForImageClassification"}


@dataclass
class LoadedModel:
    """A model loaded for :func:`compute_model_outputs`, with its tokenizer or processor.

    Attributes:
        spec: The Hub id or local folder it was loaded from.
        model: The model, in eval mode, float32.
        processor: Its tokenizer (text) or image processor (image).
        modality: ``"text"`` or ``"image"``.
        has_head: Whether ``model`` has a trained classification head (its logits are meaningful).
        load_seconds: Time taken to load it.
        note: Why a head that the config names is not used, if so.
    """

    spec: str
    model: Any
    processor: Any
    modality: Literal["text", "image"]
    has_head: bool
    load_seconds: float = 0.0
    note: str | None = None


def load_model_for_outputs(
    model_spec: str,
    *,
    modality: Literal["text", "image"] = "text",
    token: str | bool | None = None,
    allow_pickle: bool = False,
    revision: str | None = None,
) -> LoadedModel:
    """Load a model (and its tokenizer or image processor) to compute proxy inputs.

    A model whose config names a classification architecture (``...ForSequenceClassification`` for
    text, ``...ForImageClassification`` for images) with at least two labels is loaded with its
    head (``AutoModelForSequenceClassification`` / ``AutoModelForImageClassification``), so the
    head's trained weights are used; others are loaded with ``AutoModel``. A head whose weights are
    missing from the checkpoint (they would be randomly initialised) is not used. Remote code never
    runs; only safetensors weights are read unless ``allow_pickle``. Weights are loaded in float32:
    proxies are sensitive to rounding and the sample is small.

    Raises:
        ModelLoadError: One line naming the model and the cause.
    """
    import torch
    from transformers import AutoModel, AutoModelForImageClassification, AutoModelForSequenceClassification

    started = time.perf_counter()
    config = load_config(model_spec, token=token, revision=revision, allow_pickle=allow_pickle)
    architectures = list(getattr(config, "architectures", None) or [])
    head_named = any(name.endswith(_HEAD_SUFFIXES[modality]) for name in architectures) and (
        len(getattr(config, "id2label", None) or {}) >= 2
    )
    # The tokenizer or processor first: it is small, and a model of the wrong modality fails here
    # before its weights are read.
    processor = load_tokenizer_or_processor(model_spec, modality=modality, token=token, revision=revision)
    if head_named:
        auto_class = (
            AutoModelForImageClassification if modality == "image" else AutoModelForSequenceClassification
        )
    else:
        auto_class = AutoModel
    model, loading_info = load_pretrained(
        auto_class,
        model_spec,
        config=config,
        allow_pickle=allow_pickle,
        token=token,
        revision=revision,
        dtype=torch.float32,
        output_loading_info=True,
    )
    has_head, note = head_named, None
    if head_named:
        # Parameters outside the base model are the head's; missing ones were randomly initialised.
        prefix = f"{model.base_model_prefix}."
        reported = (*loading_info.get("missing_keys", ()), *loading_info.get("mismatched_keys", ()))
        names = (str(key if isinstance(key, str) else key[0]) for key in reported)  # mismatches: tuples
        untrained = sorted(name for name in names if not name.startswith(prefix))
        if untrained:
            has_head = False
            note = f"its config names a classification head but the checkpoint lacks {untrained[0]}"
    if modality == "text":
        tokenizer = getattr(processor, "tokenizer", processor)
        # Decoder tokenizers (GPT-2 ...) have no pad token; padded positions are masked anyway.
        if getattr(tokenizer, "pad_token", None) is None:
            substitute = getattr(tokenizer, "eos_token", None) or getattr(tokenizer, "unk_token", None)
            if substitute is None:
                raise ModelLoadError(f"cannot load model {model_spec}: its tokenizer has no padding token")
            tokenizer.pad_token = substitute
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return LoadedModel(
        spec=model_spec,
        model=model,
        processor=processor,
        modality=modality,
        has_head=has_head,
        load_seconds=time.perf_counter() - started,
        note=note,
    )


def _preprocess(loaded: LoadedModel, sample: datasets.Dataset, columns: ColumnInfo, max_length: int) -> Any:
    # Reuse the fine-tuning preprocessing, so proxies see exactly the inputs fine-tuning will.
    data = ClassificationData(
        spec=DatasetSpec(path="target-sample"),
        splits=datasets.DatasetDict({"train": sample}),
        text_columns=list(columns.text_columns),
        image_column=columns.image_column,
        label_names=list(columns.label_names or []),
        fingerprint="",
    )
    with _quiet_datasets():
        return preprocess_for_model(data, loaded.processor, max_length=max_length)["train"]


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide datasets' per-map progress bars while tokenising (one bar per model is noise)."""
    from datasets.utils import logging as datasets_logging

    was_enabled = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            datasets_logging.enable_progress_bar()


def _forward_arguments(model: Any) -> set[str] | None:
    """The input names ``model.forward`` accepts, or ``None`` when it takes ``**kwargs``."""
    parameters = inspect.signature(model.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return set(parameters)


def _pool(outputs: Any, attention_mask: torch.Tensor | None, modality: str) -> torch.Tensor:
    hidden_states = getattr(outputs, "hidden_states", None)
    last = hidden_states[-1] if hidden_states else outputs.last_hidden_state
    if modality == "image":
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is not None:
            return pooled.reshape(pooled.shape[0], -1).float()
        if last.dim() == 4:  # (batch, channels, height, width)
            return last.float().mean(dim=(2, 3))
        return last.float().mean(dim=1)
    last = last.float()
    if attention_mask is None:
        return last.mean(dim=1)
    mask = attention_mask.to(last.dtype).unsqueeze(-1)
    return (last * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def _forward(
    model: Any, inputs: dict[str, Any], accepted: set[str] | None, modality: str, has_head: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    inputs = {k: v for k, v in inputs.items() if k != "labels" and (accepted is None or k in accepted)}
    outputs = model(**inputs, output_hidden_states=True, return_dict=True)
    features = _pool(outputs, inputs.get("attention_mask"), modality)
    logits = outputs.logits.float() if has_head else None
    return features, logits


def _image_collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import torch

    return {"pixel_values": torch.stack([row["pixel_values"] for row in rows])}


def compute_model_outputs(
    model_spec: str | LoadedModel,
    sample: datasets.Dataset,
    columns: ColumnInfo,
    *,
    batch_size: int = 64,
    max_length: int = DEFAULT_MAX_LENGTH,
    token: str | bool | None = None,
    allow_pickle: bool = False,
    one_at_a_time: bool = False,
    revision: str | None = None,
    accelerator: Accelerator | None = None,
) -> ModelOutputs:
    """Run a model over the target sample: pooled features and, with a trained head, probabilities.

    Batched path (default): the sample is tokenised (or image-processed) as for fine-tuning,
    ordered by length so that batches carry little padding, padded per batch with
    ``DataCollatorWithPadding`` and run under ``torch.inference_mode()`` through Accelerate
    (``accelerator.prepare`` on the model and the DataLoader, ``gather_for_metrics`` on the
    outputs), so it runs on the available device and, under ``accelerate launch``, splits the
    batches across processes; every process gets the full outputs, in sample order.

    ``one_at_a_time=True`` is the reference path: one example per forward pass, no padding, no
    DataLoader. Both give the same features and probabilities up to float rounding; it exists to
    check that and to measure what batching gains.

    Args:
        model_spec: A Hub id or local folder, or a :class:`LoadedModel` (nothing is loaded then).
        sample: The target sample, as returned by :func:`hfselect.data.load_target_sample`.
        columns: Its :class:`~hfselect.data.ColumnInfo`.
        batch_size: Examples per forward pass (per process) on the batched path.
        max_length: Truncation length for text, in tokens.
        token: Hub token, for private or gated models.
        allow_pickle: Allow loading pickle (``.bin``) weights.
        one_at_a_time: Use the unbatched reference path.
        revision: Hub commit to load (``score_models`` pins the sha it keys the cache with).
        accelerator: An ``Accelerator`` to use; a fresh one by default.

    Returns:
        :class:`ModelOutputs` in sample order.

    Raises:
        ModelLoadError: The model or its tokenizer/processor cannot be loaded.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if isinstance(model_spec, LoadedModel):
        loaded = model_spec
        load_seconds = 0.0
    else:
        loaded = load_model_for_outputs(
            model_spec, modality=columns.modality, token=token, allow_pickle=allow_pickle, revision=revision
        )
        load_seconds = loaded.load_seconds
    if loaded.modality != columns.modality:
        raise ModelLoadError(
            f"model {loaded.spec} was loaded for {loaded.modality}, the sample holds {columns.modality}"
        )
    started = time.perf_counter()
    encoded = _preprocess(loaded, sample, columns, max_length)
    if one_at_a_time:
        features, logits = _run_one_at_a_time(loaded, encoded, accelerator)
    else:
        features, logits = _run_batched(loaded, encoded, batch_size, accelerator)
    probs = None
    if logits is not None:
        # Softmax in float64: LEEP takes logs of sums of small products.
        probs = torch.softmax(logits.double(), dim=-1).numpy()
    seconds = time.perf_counter() - started
    return ModelOutputs(
        features=features.numpy().astype(np.float32, copy=False),
        source_probs=probs,
        num_examples=int(features.shape[0]),
        seconds=seconds,
        load_seconds=load_seconds,
        note=loaded.note,
    )


def _run_batched(
    loaded: LoadedModel, encoded: Any, batch_size: int, accelerator: Accelerator | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    own_accelerator = accelerator is None
    accelerator = accelerator or Accelerator()
    n = len(encoded)
    if loaded.modality == "text":
        from transformers import DataCollatorWithPadding

        # Sorting by length keeps padding (wasted compute) small; outputs are put back in order.
        lengths = np.asarray([len(ids) for ids in encoded["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        # Plain rows, read from Arrow in one go: a DataLoader indexing the Dataset row by row spends
        # longer in datasets' formatting than a small model spends computing.
        columns = encoded.remove_columns("labels").to_dict()
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        dataset = [rows[i] for i in order]
        tokenizer = getattr(loaded.processor, "tokenizer", loaded.processor)
        collate: Callable[..., Any] = DataCollatorWithPadding(tokenizer, return_tensors="pt")
    else:
        order = np.arange(n)
        dataset = encoded
        collate = _image_collate
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    model, loader = accelerator.prepare(loaded.model, loader)
    accepted = _forward_arguments(accelerator.unwrap_model(model))
    feature_parts, logit_parts = [], []
    try:
        with torch.inference_mode():
            for batch in loader:
                features, logits = _forward(model, dict(batch), accepted, loaded.modality, loaded.has_head)
                # gather_for_metrics drops the examples Accelerate duplicated to even out the last
                # batches across processes, so every process ends with exactly the n outputs.
                feature_parts.append(accelerator.gather_for_metrics(features).cpu())
                if logits is not None:
                    logit_parts.append(accelerator.gather_for_metrics(logits).cpu())
    finally:
        _release(accelerator, own_accelerator, model, loader)
    gathered = torch.cat(feature_parts) if feature_parts else torch.zeros((0, 0))
    if gathered.shape[0] != n:
        raise HfSelectError(f"model {loaded.spec}: gathered {gathered.shape[0]} outputs for {n} examples")
    inverse = torch.from_numpy(np.argsort(order, kind="stable"))
    logits_all = torch.cat(logit_parts)[inverse] if logit_parts else None
    return gathered[inverse], logits_all


def _release(accelerator: Any, own: bool, *objects: Any) -> None:
    # Accelerator keeps a reference to everything it prepared; scoring hundreds of models with one
    # accelerator would otherwise keep them all in memory. Dropping those references is enough for
    # the model to be freed (no cycles hold it). Accelerator.free_memory() would also run a full
    # gc.collect(), which costs more than a tiny model's whole forward pass, for nothing on a CPU.
    for attribute in ("_models", "_dataloaders"):
        kept = getattr(accelerator, attribute, None)
        if isinstance(kept, list):
            kept[:] = [item for item in kept if not any(item is obj for obj in objects)]
    if own and accelerator.device.type != "cpu":
        import torch

        # Hand the freed blocks back to the device before the next model (torch.cuda.empty_cache,
        # or the same function of another backend: mps, xpu, npu).
        empty_cache = getattr(getattr(torch, accelerator.device.type, None), "empty_cache", None)
        if callable(empty_cache):
            empty_cache()


def _run_one_at_a_time(
    loaded: LoadedModel, encoded: Any, accelerator: Accelerator | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    import torch
    from accelerate import PartialState

    # The device the batched path would use, so that throughputs compare like with like.
    device = accelerator.device if accelerator is not None else PartialState().device
    model = loaded.model.to(device)
    accepted = _forward_arguments(model)
    feature_rows, logit_rows = [], []
    with torch.inference_mode():
        for row in encoded:
            if loaded.modality == "text":
                inputs = {
                    key: torch.tensor([value], device=device) for key, value in row.items() if key != "labels"
                }
            else:
                inputs = {"pixel_values": row["pixel_values"].unsqueeze(0).to(device)}
            features, logits = _forward(model, inputs, accepted, loaded.modality, loaded.has_head)
            feature_rows.append(features.cpu())
            if logits is not None:
                logit_rows.append(logits.cpu())
    features_all = torch.cat(feature_rows) if feature_rows else torch.zeros((0, 0))
    return features_all, (torch.cat(logit_rows) if logit_rows else None)
