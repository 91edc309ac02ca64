"""Selection reports: the ``report.json`` of ``hfselect select``/``demo`` as an object and as a Hub card.

:class:`SelectionReport` wraps the JSON (it keeps the dict as it is, so ``to_json`` writes the same
schema back) and offers the normalised views the card needs. :func:`render_report_card` turns it into
a ``README.md`` through huggingface_hub's card classes and the Jinja template ``template.md`` next to
this file: the Python side prepares every value (escaped, formatted, linked), the template only lays
them out, so the template stays readable and the card data (the YAML block) stays valid metadata.
:func:`write_report_folder` writes the card, the JSON and the learning-curves plot into one folder.

Cards and JSON never hold a Hugging Face token (:func:`redact_secrets`), and the card shows local
paths by their last component only, so a pushed card does not reveal a home folder.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData, constants

from hfselect.core.scopes import RULE_SUMMARIES
from hfselect.errors import HfSelectError

TEMPLATE_PATH = Path(__file__).with_name("template.md")
REPORT_JSON = "report.json"
CARD_NAME = "README.md"
PLOT_NAME = "learning_curves.png"
TAGS = ("hfselect", "model-selection", "recall-and-select")
PAPER_URL = "https://arxiv.org/abs/2404.00069"
# What a card shows for a missing value, and the "times" sign of cost ratios.
MISSING = "\u2013"
TIMES = "\u00d7"

# Hugging Face user tokens ("hf_" + 34 letters and digits) and legacy org tokens; 16+ characters so
# that names such as ``hf_transfer`` are left alone.
_TOKEN_PATTERN = re.compile(r"\b(hf|api_org)_[A-Za-z0-9]{16,}")
# ``--token VALUE`` / ``--token=VALUE`` / ``token=VALUE`` in a recorded command line.
_TOKEN_OPTION = re.compile(r"(--?token[= ]|\btoken=)(\S+)", re.IGNORECASE)
# A Hub repository id: ``name`` or ``namespace/name`` (the Hub's own character set).
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_NAMESPACED_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def redact_secrets(value: Any, *, secret: str | None = None) -> Any:
    """``value`` (a string, or lists/dicts of them) with anything that looks like a token replaced.

    Replaces Hugging Face token patterns, the value after a ``--token`` option, and ``secret`` (the
    token actually in use, whatever its shape) by ``***``. Used on every report before it is
    written, rendered or pushed.
    """
    if isinstance(value, str):
        if secret and len(secret) >= 8:  # a real token; masking a short string would garble the text
            value = value.replace(secret, "***")
        value = _TOKEN_OPTION.sub(lambda match: match.group(1) + "***", value)
        return _TOKEN_PATTERN.sub("***", value)
    if isinstance(value, Mapping):
        return {key: redact_secrets(item, secret=secret) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_secrets(item, secret=secret) for item in value]
    return value


def home_as_tilde(text: str) -> str:
    """``text`` with the home folder written ``~`` (a published report should not name the user)."""
    home = str(Path.home())
    return text.replace(home, "~") if len(home) > 1 else text


def _finite(value: Any) -> float | None:
    """A float, or None for missing/NaN/inf (JSON reports carry NaN as null, but be lenient)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: Any, digits: int = 4) -> str:
    number = _finite(value)
    return MISSING if number is None else f"{number:.{digits}f}"


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell: no pipes, no HTML, one line."""
    text = "" if text is None else str(text)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def _display_path(value: str) -> str:
    """The last component of a local path (the card must not reveal a home folder)."""
    return Path(value.rstrip("/\\")).name or value


def is_hub_model_id(model_id: str | None, spec: str | None = None) -> bool:
    """Whether ``model_id`` names a Hub model (``namespace/name``) rather than a local folder.

    A candidate loaded from a local folder has its folder as ``spec``; a Hub candidate's spec is its
    id. Names without a namespace are ambiguous (a folder name looks the same) and count as local.
    """
    if not model_id or not _NAMESPACED_ID.match(model_id):
        return False
    return spec is None or spec == model_id


def split_hub_dataset(target: str | None) -> tuple[str, str | None] | None:
    """``(dataset_id, config)`` when ``target`` is a Hub dataset spec (``ID`` or ``ID:CONFIG``), else None.

    Local paths (absolute, starting with ``.`` or ``~``, or an existing file or folder) are not Hub ids.
    """
    if not target or "\\" in target or target.startswith((".", "/", "~")):
        return None
    dataset_id, _, config = target.partition(":")
    if not _REPO_ID.match(dataset_id) or (config and not re.fullmatch(r"[\w.-]+", config)):
        return None
    if Path(target).exists() or Path(dataset_id).exists():
        return None
    return dataset_id, config or None


def target_name(target: str) -> str:
    """How a card names a target: its Hub id (and config), or a local dataset's folder name."""
    hub = split_hub_dataset(target)
    if hub is not None:
        return hub[0] + (f" ({hub[1]})" if hub[1] else "")
    return _display_path(target) if target else "unknown"


def _hub_url(repo_id: str, repo_type: str = "model") -> str:
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return f"{constants.ENDPOINT.rstrip('/')}/{prefix}{repo_id}"


@dataclass
class Candidate:
    """One fine-selection candidate as the card shows it."""

    model_id: str
    spec: str | None
    epochs: list[float]
    curve: list[float]
    predicted_final: list[float | None]
    state: str
    reason: str | None
    seconds: float | None
    selected: bool
    recall_rank: int | None

    @property
    def is_hub(self) -> bool:
        """Whether the candidate is a Hub model (linked in the card, named as ``base_model``)."""
        return is_hub_model_id(self.model_id, self.spec)

    @property
    def last_epoch(self) -> float | None:
        """The epoch of its last evaluation."""
        return self.epochs[-1] if self.epochs else None


@dataclass
class SelectionReport:
    """A selection report: the ``report.json`` that ``hfselect select`` and ``hfselect demo`` write.

    ``data`` is that JSON as a dict, kept as it is (so :meth:`to_json` writes the same schema); the
    properties are normalised views of it. Reports built from a study (:meth:`from_study`) have no
    ``recall`` section.
    """

    data: dict[str, Any]

    # -- loading and saving ---------------------------------------------------------------------

    @classmethod
    def from_json(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> SelectionReport:
        """Load a report from a dict, a ``report.json`` file, or a folder holding one.

        Raises:
            HfSelectError: the file is missing, is not JSON, or is not an hfselect report.
        """
        if isinstance(source, Mapping):
            data = copy.deepcopy(dict(source))
            where = "the report"
        else:
            path = Path(source)
            if path.is_dir():
                path = path / REPORT_JSON
            where = str(path)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except OSError as error:
                raise HfSelectError(f"cannot read the selection report {path}: {error.strerror}") from error
            except ValueError as error:
                raise HfSelectError(f"{path} is not JSON: {error}") from error
        if not isinstance(data, dict) or not isinstance(data.get("selection"), Mapping):
            raise HfSelectError(
                f"{where} is not an hfselect selection report (no 'selection' section); "
                "make one with `hfselect select` or `hfselect demo`"
            )
        return cls(redact_secrets(data))

    def to_json(self, path: str | os.PathLike[str] | None = None, *, public: bool = False) -> str:
        """The report as JSON text (written to ``path`` too when given).

        Tokens are always redacted. ``public=True`` (what a push uses) also writes the home folder
        as ``~`` in paths, so a published report does not reveal the user name of the machine.
        """
        data = redact_secrets(self.data)
        text = json.dumps(data, indent=2, default=str)
        if public:
            home = json.dumps(str(Path.home()))[1:-1]  # as it appears inside JSON strings
            if len(home) > 1:
                text = text.replace(home, "~")
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_study(
        cls, repository: Any, study_id: str, *, metric: str | None = None, command: str | None = None
    ) -> SelectionReport:
        """A report of a selection study stored in a repository (tables ``study_trials``, ``study_curves``).

        Studies written by the :class:`~hfselect.callbacks.ConvergenceTrendCallback` hold no recall,
        and no budget: the report's brute-force cost is every run trained as far as the longest one.
        The selected model is the best completed run (or, while none completed, the best so far).

        Args:
            repository: a :class:`~hfselect.store.repository.ModelRepository` or the path of one.
            study_id: the study's name.
            metric: the metric's name for the card (the callback's ``metric``); default ``score``.
            command: how the study was run, for the reproduction section.
        """
        from hfselect.cards.study import study_report_dict

        return cls(redact_secrets(study_report_dict(repository, study_id, metric=metric, command=command)))

    # -- normalised views -----------------------------------------------------------------------

    @property
    def selection(self) -> dict[str, Any]:
        """The ``selection`` section (SelectionResult.to_dict())."""
        return dict(self.data.get("selection") or {})

    @property
    def recall(self) -> dict[str, Any] | None:
        """The ``recall`` section (TargetRecall.to_dict()), or None for a study report."""
        recall = self.data.get("recall")
        return dict(recall) if isinstance(recall, Mapping) else None

    @property
    def target(self) -> str:
        """The target dataset as given (Hub id, ``ID:CONFIG`` or local path)."""
        return str(self.data.get("target") or self.selection.get("target") or "")

    @property
    def metric(self) -> str:
        """The validation metric's name."""
        return str(self.data.get("metric") or (self.data.get("protocol") or {}).get("metric") or "score")

    @property
    def selected_model(self) -> str | None:
        """The model fine selection chose."""
        return self.data.get("selected_model") or self.selection.get("selected_model")

    @property
    def selected_score(self) -> float | None:
        """Its validation score at the end of the budget."""
        return _finite(self.data.get("selected_score", self.selection.get("selected_score")))

    @property
    def test_score(self) -> float | None:
        """Its score on the target's test split, when one was computed."""
        return _finite(self.data.get("test_score", self.selection.get("test_score")))

    @property
    def candidates(self) -> list[Candidate]:
        """Every fine-selection candidate, in the order fine selection listed them."""
        ranks = {}
        for entry in (self.recall or {}).get("entries") or []:
            ranks[entry.get("model_id")] = entry.get("rank")
        selected = self.selected_model
        out = []
        for raw in self.selection.get("candidates") or []:
            values = list(raw.get("curve") or [])
            x = raw.get("curve_epochs") or list(range(1, len(values) + 1))  # select's curves: one per epoch
            # A NaN evaluation (a diverged run) is left out with its epoch, keeping the two aligned.
            points = [(float(e), float(v)) for e, v in zip(x, values, strict=False) if _finite(v) is not None]
            predicted = [_finite(v) for v in raw.get("predicted_final") or []]
            out.append(
                Candidate(
                    model_id=str(raw.get("model_id")),
                    spec=raw.get("spec"),
                    epochs=[e for e, _ in points],
                    curve=[v for _, v in points],
                    predicted_final=predicted,
                    state=str(raw.get("state") or "running"),
                    reason=raw.get("reason"),
                    seconds=_finite(raw.get("seconds")),
                    selected=raw.get("model_id") == selected,
                    recall_rank=ranks.get(raw.get("model_id")),
                )
            )
        return out

    @property
    def is_study(self) -> bool:
        """Whether this report was built from a study (no recall, no budget)."""
        return self.data.get("source") == "study" or self.recall is None


# -- the card ----------------------------------------------------------------------------------------


def _recall_reason(entry: Mapping[str, Any], scope: str | None) -> str:
    """What a model's recall score came from: the same wording as ``hfselect recall``.

    Reports written before recall entries carried their ``source`` fall back to the entry's role
    under the rule that ran.
    """
    if entry.get("source"):
        return str(entry["source"])
    role = entry.get("role")
    if scope == "every":
        return "own proxy (no benchmark results)" if role == "new" else "own proxy"
    if role == "representative":
        return "represents its cluster"
    if role == "member":
        return f"member of cluster {entry.get('cluster')}, represented by {entry.get('representative')}"
    if role == "singleton":
        if entry.get("proxy_model") != entry.get("model_id"):
            return "alone in its cluster: weighted by its similarity to every representative"
        return "no cluster has several models: weighted by its own proxy"
    if role == "new":
        return "no benchmark results: ranked by its own proxy"
    return str(role or "")


def model_name(model_id: str) -> str:
    """How a card names a model: its id, or a local folder's last component when the id is a path.

    (The callback names a run after ``name_or_path``, an absolute folder for a local model.)
    """
    if model_id.startswith(("/", "~", ".")) or "\\" in model_id or model_id.count("/") > 1:
        return _display_path(model_id)
    return model_id


def _model_ref(model_id: str, spec: str | None = None) -> str:
    """Markdown for a model: a link to its Hub page, or its name in code for a local model."""
    if is_hub_model_id(model_id, spec):
        return f"[`{model_id}`]({_hub_url(model_id)})"
    return f"`{_cell(model_name(model_id))}`"


def _target_view(target: str) -> dict[str, Any]:
    if not target:  # a study written by the callback records no target
        return {"name": None, "ref": None, "hub_id": None, "config": None, "local": False}
    hub = split_hub_dataset(target)
    name = target_name(target)
    if hub is not None:
        dataset_id, config = hub
        return {
            "name": name,
            "ref": f"[`{dataset_id}`]({_hub_url(dataset_id, 'dataset')})"
            + (f" (config `{config}`)" if config else ""),
            "hub_id": dataset_id,
            "config": config,
            "local": False,
        }
    return {
        "name": name,
        "ref": f"`{_cell(name)}` (a local dataset)",
        "hub_id": None,
        "config": None,
        "local": True,
    }


def _summary_metadata(report: SelectionReport) -> dict[str, Any]:
    """The machine-readable ``hfselect:`` block of the card metadata."""
    selection = report.selection
    target = _target_view(report.target)
    summary = {
        "target": target["hub_id"] or target["name"],  # None (left out) when not recorded
        "selected_model": report.selected_model,
        "metric": report.metric,
        "validation_score": report.selected_score,
        "test_score": report.test_score,
        "candidates": len(selection.get("candidates") or []),
        "epochs_spent": selection.get("epochs_spent"),
        "brute_force_epochs": selection.get("brute_force_epochs"),
        "study": selection.get("study"),
        "version": report.data.get("hfselect_version"),
    }
    return {key: value for key, value in summary.items() if value is not None}


def report_card_data(
    report: SelectionReport, *, repo_type: str = "dataset", includes_model: bool = False
) -> ModelCardData | DatasetCardData:
    """The card's YAML metadata.

    Both kinds carry the tags, ``datasets`` (the target, when it is a Hub id), ``base_model`` (the
    selected model, when it is a Hub id) and an ``hfselect`` summary (target, selected model, metric,
    scores, cost). A model card also gets a ``model-index`` with the validation (and test) score; a
    dataset card turns the dataset viewer off, as the repository holds a report, not a dataset.
    ``includes_model`` (a model repository holding the fine-tuned weights) adds ``library_name``
    and ``pipeline_tag``.
    """
    target = _target_view(report.target)
    selected = report.selected_model
    spec = next((c.spec for c in report.candidates if c.selected), None)
    base_model = selected if selected and is_hub_model_id(selected, spec) else None
    datasets = [target["hub_id"]] if target["hub_id"] else None
    title = f"hfselect {_title(report, target)}"
    extra: dict[str, Any] = {"hfselect": _summary_metadata(report)}
    if repo_type == "model":
        dataset_name = target["name"] or str(report.selection.get("study") or "unknown")
        eval_results = []
        for split, score in (("validation", report.selected_score), ("test", report.test_score)):
            if score is None:
                continue
            eval_results.append(
                EvalResult(
                    task_type="text-classification",
                    task_name="Text Classification",
                    dataset_type=target["hub_id"] or dataset_name,
                    dataset_name=dataset_name,
                    dataset_config=target["config"],
                    dataset_split=split,
                    metric_type=report.metric,
                    metric_value=score,
                    metric_name=f"{split} {report.metric}",
                )
            )
        return ModelCardData(
            model_name=title,
            base_model=base_model,
            datasets=datasets,
            metrics=[report.metric],
            tags=list(TAGS),
            eval_results=eval_results or None,
            library_name="transformers" if includes_model else None,
            pipeline_tag="text-classification" if includes_model else None,
            **extra,
        )
    if repo_type != "dataset":
        raise ValueError(f"a report card is a 'model' or 'dataset' card, not {repo_type!r}")
    return DatasetCardData(
        pretty_name=title,
        tags=[*TAGS, "report"],
        viewer=False,
        base_model=base_model,
        datasets=datasets,
        **extra,
    )


def _protocol_rows(report: SelectionReport) -> list[tuple[str, str]]:
    protocol = dict(report.data.get("protocol") or {})
    labels = [
        ("metric", "metric"),
        ("epochs", "epochs (budget per candidate)"),
        ("learning_rate", "peak learning rate"),
        ("batch_size", "batch size"),
        ("max_length", "max tokens per example"),
        ("train_samples", "training examples (seeded sample)"),
        ("eval_samples", "validation/test examples (seeded sample)"),
        ("seed", "seed"),
        ("key", "protocol key"),
    ]
    rows = []
    for key, label in labels:
        if key in protocol and protocol[key] is not None:
            value = protocol[key]
            rows.append((label, f"`{_cell(value)}`"))
        elif key in ("train_samples", "eval_samples") and key in protocol:
            rows.append((label, "all"))
    return rows


def _snapshot_rows(report: SelectionReport) -> list[tuple[str, str]]:
    """What the model repository held: the recorded snapshot, else what the recall saw."""
    rows: list[tuple[str, str]] = []
    snapshot = report.data.get("repository")
    if isinstance(snapshot, Mapping):
        counts = snapshot.get("counts") or {}
        if snapshot.get("models_with_results") is not None:
            rows.append(("models with benchmark results", str(snapshot["models_with_results"])))
        if snapshot.get("benchmark_datasets") is not None:
            rows.append(("benchmark datasets", str(snapshot["benchmark_datasets"])))
        for table in ("models", "results", "curves"):
            if table in counts:
                rows.append((f"rows in `{table}`", str(counts[table])))
        protocols = snapshot.get("protocols") or []
        if protocols:
            rows.append(("benchmark protocols", ", ".join(f"`{_cell(p.get('key'))}`" for p in protocols)))
        if snapshot.get("source"):
            rows.append(("repository", _cell(snapshot["source"])))
    recall = report.recall
    if recall is not None:
        ranking = recall.get("ranking") or []
        clusters = recall.get("clusters") or []
        rows.append(("models ranked by the recall", str(len(ranking))))
        if clusters:
            multi = sum(1 for cluster in clusters if len(cluster) > 1)
            rows.append(("clusters", f"{len(clusters)} ({multi} with several models)"))
        if recall.get("new_models"):
            rows.append(("models without benchmark results", str(len(recall["new_models"]))))
    excluded = report.data.get("excluded_benchmark_datasets") or []
    if excluded:
        rows.append(
            ("benchmark datasets held out", ", ".join(f"`{_cell(_display_path(d))}`" for d in excluded))
        )
    return [(label[:1].upper() + label[1:], value) for label, value in rows]


def _facts(report: SelectionReport, target: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The bullet list under the target heading: target, metric, then the repository snapshot."""
    facts = [("Target dataset", target["ref"])] if target["ref"] else []
    metric = f"{_cell(report.metric)} on the target's validation split"
    if report.test_score is not None:
        metric += " (the selected model is also scored on the test split)"
    return [*facts, ("Metric", metric), *_snapshot_rows(report)]


def _recall_view(report: SelectionReport) -> dict[str, Any] | None:
    recall = report.recall
    if recall is None:
        return None
    proxy = str(recall.get("proxy") or "proxy")
    rows = []
    for entry in recall.get("entries") or []:
        proxy_value = _finite(entry.get("proxy"))
        proxy_model = entry.get("proxy_model")
        proxy_text = _fmt(proxy_value)
        if proxy_value is not None and proxy_model and proxy_model != entry.get("model_id"):
            proxy_text += f" (of `{_cell(proxy_model)}`)"
        rows.append(
            {
                "rank": entry.get("rank"),
                "model": _model_ref(str(entry.get("model_id"))),
                "score": _fmt(entry.get("score")),
                "mean": _fmt(entry.get("mean_score")),
                "proxy": proxy_text,
                "why": _cell(_recall_reason(entry, recall.get("scope"))),
            }
        )
    recalled = set(recall.get("models") or [])
    representatives = {str(k): v for k, v in (recall.get("representatives") or {}).items()}
    clusters = []
    for index, members in enumerate(recall.get("clusters") or []):
        if not recalled.intersection(members) or len(members) < 2:
            continue  # a large repository has hundreds of clusters: show those the recall drew on
        shown = [f"**`{_cell(m)}`**" if m in recalled else f"`{_cell(m)}`" for m in members[:8]]
        if len(members) > 8:
            shown.append(f"and {len(members) - 8} more")
        clusters.append(
            {
                "cluster": index,
                "size": len(members),
                "representative": f"`{_cell(representatives.get(str(index), MISSING))}`",
                "members": ", ".join(shown),
            }
        )
    all_clusters = recall.get("clusters") or []
    notes = [_cell(note) for note in recall.get("notes") or []]
    skipped = [f"`{_cell(m)}`: {_cell(r)}" for m, r in sorted((recall.get("skipped") or {}).items())]
    return {
        "proxy": proxy,
        "proxy_upper": proxy.upper() if proxy in ("leep", "logme", "nce") else proxy,
        "proxied": len(recall.get("proxied_models") or []),
        "proxy_seconds": _fmt(recall.get("proxy_seconds"), 1),
        "ranked": len(recall.get("ranking") or []),
        "top_k": recall.get("top_k"),
        "scope": recall.get("scope"),
        "rule": RULE_SUMMARIES.get(str(recall.get("scope")), ""),
        "threshold": _fmt(recall.get("threshold"), 3) if recall.get("threshold") is not None else None,
        "k_largest": recall.get("k_largest"),
        "rows": rows,
        "clusters": clusters,
        "n_clusters": len(all_clusters),
        "n_multi": sum(1 for cluster in all_clusters if len(cluster) > 1),
        "n_singletons": sum(1 for cluster in all_clusters if len(cluster) == 1),
        "fallback": bool(recall.get("fallback_to_proxy_only")),
        "notes": notes,
        "skipped": skipped,
    }


def _curve_text(values: list[float]) -> str:
    return " → ".join(f"{v:.3f}" for v in values) if values else MISSING


def _epoch_text(epoch: float | None) -> str:
    if epoch is None:
        return MISSING
    return str(int(epoch)) if float(epoch).is_integer() else f"{epoch:.2f}"


def _rounds_view(report: SelectionReport, candidates: list[Candidate]) -> list[dict[str, Any]]:
    by_id = {c.model_id: c for c in candidates}
    rounds = []
    for raw in report.selection.get("rounds") or []:
        epoch = _finite(raw.get("round"))
        rows = []
        for decision in raw.get("decisions") or []:
            model_id = str(decision.get("model_id"))
            candidate = by_id.get(model_id)
            so_far = []
            if candidate is not None and epoch is not None:
                so_far = [
                    v for e, v in zip(candidate.epochs, candidate.curve, strict=False) if e <= epoch + 1e-9
                ]
            stop = decision.get("decision") == "stop"
            rows.append(
                {
                    "model": _model_ref(model_id, candidate.spec if candidate else None),
                    "score": _fmt(decision.get("score")),
                    "curve": _curve_text(so_far),
                    "predicted": _fmt(decision.get("predicted_final")),
                    "decision": "**stop**" if stop else "continue",
                    "reason": _cell(decision.get("reason") or ""),
                }
            )
        solo = len(rows) == 1 and rows[0]["decision"] == "continue"
        rounds.append({"round": _epoch_text(epoch), "rows": rows, "solo": solo})
    # Once one candidate is left it trains on alone: one line for those epochs, not a table each.
    merged: list[dict[str, Any]] = []
    for item in rounds:
        previous = merged[-1] if merged else None
        if (
            item["solo"]
            and previous is not None
            and previous["solo"]
            and previous["model"] == item["rows"][0]["model"]
        ):
            previous["last"], previous["curve"] = item["round"], item["rows"][0]["curve"]
            continue
        if item["solo"]:
            row = item["rows"][0]
            item.update(first=item["round"], last=item["round"], model=row["model"], curve=row["curve"])
        merged.append(item)
    return merged


def _candidate_rows(candidates: list[Candidate]) -> list[dict[str, str]]:
    rows = []
    for c in candidates:
        if c.selected:
            outcome = "**selected**"
        elif c.state == "stopped":
            outcome = f"stopped after epoch {_epoch_text(c.last_epoch)}: {_cell(c.reason or '')}"
        elif c.state == "failed":
            outcome = f"failed: {_cell(c.reason or '')}"
        else:
            outcome = _cell(c.state)
        predicted = next((p for p in reversed(c.predicted_final) if p is not None), None)
        rows.append(
            {
                "model": _model_ref(c.model_id, c.spec),
                "rank": MISSING if c.recall_rank is None else str(c.recall_rank),
                "epochs": _epoch_text(c.last_epoch) if c.curve else "0",
                "curve": _curve_text(c.curve),
                "predicted": _fmt(predicted),
                "outcome": outcome,
                "seconds": _fmt(c.seconds, 1),
            }
        )
    return rows


def winner_gap(candidates: Sequence[Candidate]) -> dict[str, Any] | None:
    """How far the winner was ahead of the worst recalled candidate, at an epoch all were evaluated at.

    The worst candidate is the lowest-scoring one at the first epoch every candidate reached
    (candidates stopped early have no later score to compare). None without a winner and a rival.
    """
    winner = next((c for c in candidates if c.selected and c.curve), None)
    rivals = [c for c in candidates if not c.selected and c.curve]
    if winner is None or not rivals:
        return None
    common = set(winner.epochs).intersection(*(c.epochs for c in rivals))
    if not common:
        return None
    epoch = min(common)

    def at(candidate: Candidate) -> float:
        return candidate.curve[candidate.epochs.index(epoch)]

    worst = min(rivals, key=at)
    return {
        "epoch": epoch,
        "winner": winner.model_id,
        "winner_score": at(winner),
        "winner_final": winner.curve[-1],
        "winner_final_epoch": winner.last_epoch,
        "worst": worst.model_id,
        "worst_score": at(worst),
        "worst_last": worst.curve[-1],
        "worst_last_epoch": worst.last_epoch,
        "gap": at(winner) - at(worst),
    }


def _gap_view(report: SelectionReport) -> dict[str, Any] | None:
    candidates = report.candidates
    gap = winner_gap(candidates)
    if gap is None:
        return None
    specs = {c.model_id: c.spec for c in candidates}
    return {
        "epoch": _epoch_text(gap["epoch"]),
        "winner": _model_ref(gap["winner"], specs[gap["winner"]]),
        "winner_score": _fmt(gap["winner_score"]),
        "winner_final": _fmt(gap["winner_final"]),
        "winner_final_epoch": _epoch_text(gap["winner_final_epoch"]),
        "worst": _model_ref(gap["worst"], specs[gap["worst"]]),
        "worst_score": _fmt(gap["worst_score"]),
        "worst_last": _fmt(gap["worst_last"]),
        "worst_last_epoch": _epoch_text(gap["worst_last_epoch"]),
        "gap": _fmt(gap["gap"], 3),
    }


def _cost_view(report: SelectionReport) -> dict[str, Any] | None:
    selection = report.selection
    spent = _finite(selection.get("epochs_spent"))
    brute = _finite(selection.get("brute_force_epochs"))
    brute_all = _finite(selection.get("brute_force_repository_epochs"))
    halving = _finite(selection.get("successive_halving_epochs"))
    if spent is None:
        return None

    def ratio(other: float | None) -> str:
        return MISSING if other is None or not spent else f"{other / spent:.1f}{TIMES}"

    return {
        "spent": _epoch_text(spent),
        "brute": _epoch_text(brute),
        "halving": _epoch_text(halving),
        "brute_ratio": ratio(brute),
        "brute_all": _epoch_text(brute_all),
        "brute_all_ratio": ratio(brute_all),
        "models": selection.get("repository_models"),
        "halving_ratio": ratio(halving),
        "wall": _fmt(selection.get("wall_time_s"), 0),
        "candidates": len(selection.get("candidates") or []),
    }


def _reproduce_view(report: SelectionReport) -> dict[str, Any]:
    protocol = report.data.get("protocol") or {}
    versions = report.data.get("versions") or {}
    version_rows = [(name, str(value)) for name, value in versions.items() if value]
    if not version_rows and report.data.get("hfselect_version"):
        version_rows = [("hfselect", str(report.data["hfselect_version"]))]
    command = report.data.get("command")
    return {
        "command": redact_secrets(str(command)) if command else None,
        "version": report.data.get("hfselect_version"),
        "versions": version_rows,
        "seed": protocol.get("seed"),
        "study": report.selection.get("study"),
        "schedule": (report.data.get("selection_config") or {}).get("schedule"),
    }


def _title(report: SelectionReport, target: Mapping[str, Any]) -> str:
    if target["name"]:
        return f"model selection for {target['name']}"
    return f"model-selection study {report.selection.get('study') or ''}".strip()


def report_card_context(report: SelectionReport, *, plot_name: str | None = PLOT_NAME) -> dict[str, Any]:
    """Everything the template shows, prepared (escaped, formatted, linked) for Markdown."""
    candidates = report.candidates
    selected = next((c for c in candidates if c.selected), None)
    target = _target_view(report.target)
    selected_id = report.selected_model
    return {
        "title": _title(report, target)[:1].upper() + _title(report, target)[1:],
        "target": target,
        "metric": _cell(report.metric),
        "is_study": report.is_study,
        "selected": {
            "id": selected_id,
            "ref": _model_ref(selected_id, selected.spec if selected else None) if selected_id else None,
            "score": _fmt(report.selected_score),
            "test_score": _fmt(report.test_score) if report.test_score is not None else None,
            "epochs": _epoch_text(selected.last_epoch) if selected and selected.curve else None,
            "completed": bool(selected and selected.state == "completed"),
        },
        "protocol": _protocol_rows(report),
        "facts": _facts(report, target),
        "recall": _recall_view(report),
        "rounds": _rounds_view(report, candidates),
        "candidates": _candidate_rows(candidates),
        "cost": _cost_view(report),
        "gap": _gap_view(report),
        "reproduce": _reproduce_view(report),
        "plot": plot_name,
        "paper_url": PAPER_URL,
        "study_source": report.data.get("source") == "study",
    }


def render_report_card(
    report: SelectionReport | Mapping[str, Any] | str | os.PathLike[str],
    *,
    repo_type: str = "dataset",
    includes_model: bool = False,
    plot_name: str | None = PLOT_NAME,
) -> ModelCard | DatasetCard:
    """The report's Hub card (``README.md``): YAML metadata plus the Markdown report.

    Args:
        report: a :class:`SelectionReport`, its dict, or the path of a ``report.json`` (or its folder).
        repo_type: ``"dataset"`` (a :class:`~huggingface_hub.DatasetCard`) or ``"model"`` (a
            :class:`~huggingface_hub.ModelCard` with a ``model-index``).
        includes_model: the card goes with the fine-tuned model's weights (a model repository).
        plot_name: the learning-curves image next to the card, linked relatively; None leaves it out.
    """
    if not isinstance(report, SelectionReport):
        report = SelectionReport.from_json(report)
    card_data = report_card_data(report, repo_type=repo_type, includes_model=includes_model)
    context = report_card_context(report, plot_name=plot_name)
    card_class = ModelCard if repo_type == "model" else DatasetCard
    card = card_class.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        repo_type=repo_type,
        includes_model=includes_model,
        **context,
    )
    # Belt and braces: nothing rendered may carry a token, whatever a field held; and the command
    # line's paths show the home folder as ``~`` (still valid in a shell, reveals no user name).
    card.text = home_as_tilde(redact_secrets(card.text))
    return card


def write_report_folder(
    report: SelectionReport | Mapping[str, Any] | str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    repo_type: str = "dataset",
    includes_model: bool = False,
    public: bool = False,
) -> dict[str, Path]:
    """Write ``README.md`` (the card), ``report.json`` and ``learning_curves.png`` into ``directory``.

    This is what ``hfselect select --output DIR`` and ``hfselect demo`` call after the selection, and
    what :func:`~hfselect.cards.push.push_report` pushes. Returns the paths written, by file name.
    ``public`` writes the home folder as ``~`` in the JSON (see :meth:`SelectionReport.to_json`).
    """
    from hfselect.cards.plot import plot_learning_curves

    if not isinstance(report, SelectionReport):
        report = SelectionReport.from_json(report)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        REPORT_JSON: folder / REPORT_JSON,
        PLOT_NAME: folder / PLOT_NAME,
        CARD_NAME: folder / CARD_NAME,
    }
    report.to_json(written[REPORT_JSON], public=public)
    plotted = plot_learning_curves(report, written[PLOT_NAME])
    card = render_report_card(
        report, repo_type=repo_type, includes_model=includes_model, plot_name=PLOT_NAME if plotted else None
    )
    card.save(written[CARD_NAME])
    if not plotted:
        del written[PLOT_NAME]
    return written
