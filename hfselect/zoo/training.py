"""Building one zoo model: tokenizers, configs and the seeded, single-threaded pre-training."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfselect.zoo.cards import _model_card, _model_description
from hfselect.zoo.language import _stable_seed
from hfselect.zoo.manifest import ZooModel
from hfselect.zoo.recipes import _ModelSpec
from hfselect.zoo.tasks import _TASKS, _Task

if TYPE_CHECKING:  # imported lazily at run time: torch/transformers are slow to import
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


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
