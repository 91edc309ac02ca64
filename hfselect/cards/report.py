"""A selection report as a Hub card: ``README.md`` with YAML metadata, and the report folder.

:func:`render_report_card` turns a :class:`~hfselect.cards.selection_report.SelectionReport` into a
``README.md`` through huggingface_hub's card classes and the Jinja template ``template.md`` next to
this file: the Python side prepares every value (formatted, linked), the template only lays them
out, so the template stays readable and the card data (the YAML block) stays valid metadata. Every
value the template prints is escaped by :mod:`hfselect.cards.markdown` unless the Python side built
it as :class:`~hfselect.cards.markdown.Markdown` from escaped parts (a link, a code span).
:func:`write_report_folder` writes the card, the JSON and the learning-curves plot into one folder.

Cards and JSON never hold a Hugging Face token (:func:`~hfselect.cards.names.redact_secrets`), the
card names local datasets and models by their last path component, and a pushed card and JSON hold
no absolute local path at all (:meth:`~hfselect.cards.selection_report.SelectionReport.public`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData, constants

from hfselect.cards.markdown import Markdown, code, code_block, link, one_line, render_card, url
from hfselect.cards.names import (
    display_path,
    finite,
    home_as_tilde,
    is_hub_model_id,
    model_name,
    redact_secrets,
    split_hub_dataset,
    target_name,
)
from hfselect.cards.selection_report import REPORT_JSON, Candidate, SelectionReport, winner_gap
from hfselect.core.recall_result import score_source
from hfselect.core.scopes import RULE_SUMMARIES
from hfselect.errors import HfSelectError

TEMPLATE_PATH = Path(__file__).with_name("template.md")
CARD_NAME = "README.md"
PLOT_NAME = "learning_curves.png"
TAGS = ("hfselect", "model-selection", "recall-and-select")
PAPER_URL = "https://arxiv.org/abs/2404.00069"
# What a card shows for a missing value, and the "times" sign of cost ratios.
MISSING = "\u2013"
TIMES = "\u00d7"


def _fmt(value: Any, digits: int = 4) -> str:
    number = finite(value)
    return MISSING if number is None else f"{number:.{digits}f}"


def _hub_url(repo_id: str, repo_type: str = "model") -> str:
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return f"{constants.ENDPOINT.rstrip('/')}/{prefix}{repo_id}"


def _model_ref(model_id: str, spec: str | None = None) -> Markdown:
    """Markdown for a model: a link to its Hub page, or its name in code for a local model."""
    if is_hub_model_id(model_id, spec):
        return link(code(model_id), _hub_url(model_id))
    return code(model_name(model_id))


def _target_view(target: str) -> dict[str, Any]:
    if not target:  # a study written by the callback records no target
        return {"name": None, "ref": None, "hub_id": None, "config": None, "local": False}
    hub = split_hub_dataset(target)
    name = target_name(target)
    if hub is not None:
        dataset_id, config = hub
        return {
            "name": name,
            "ref": link(code(dataset_id), _hub_url(dataset_id, "dataset"))
            + (Markdown(" (config {})").format(code(config)) if config else ""),
            "hub_id": dataset_id,
            "config": config,
            "local": False,
        }
    return {
        "name": name,
        "ref": Markdown("{} (a local dataset)").format(code(name)),
        "hub_id": None,
        "config": None,
        "local": True,
    }


def masked(report: SelectionReport) -> SelectionReport:
    """``report`` with every token masked (:func:`~hfselect.cards.names.redact_secrets`), in every field.

    A report loaded from a file or a dict was masked by :meth:`SelectionReport.from_dict`; one built
    in memory (``hfselect select`` builds its own) was not, and its values reach the card's YAML
    header as well as its body: so a card is always made from a copy that went through
    ``from_dict`` (which also checks its shape).
    """
    return SelectionReport.from_dict(report.to_dict())


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
        "study": report.study,
        "version": report.hfselect_version,
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
    report = masked(report)
    target = _target_view(report.target)
    selected = report.selected_model
    spec = next((c.spec for c in report.candidates if c.selected), None)
    base_model = selected if selected and is_hub_model_id(selected, spec) else None
    datasets = [target["hub_id"]] if target["hub_id"] else None
    title = f"hfselect {_title(report, target)}"
    extra: dict[str, Any] = {"hfselect": _summary_metadata(report)}
    if repo_type == "model":
        dataset_name = target["name"] or str(report.study or "unknown")
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


def _protocol_rows(report: SelectionReport) -> list[tuple[str, Markdown | str]]:
    protocol = dict(report.protocol)
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
            rows.append((label, code(value)))
        elif key in ("train_samples", "eval_samples") and key in protocol:
            rows.append((label, "all"))
    return rows


def _snapshot_rows(report: SelectionReport) -> list[tuple[Markdown | str, Markdown | str]]:
    """What the model repository held: the recorded snapshot, else what the recall saw."""
    rows: list[tuple[Markdown | str, Markdown | str]] = []
    snapshot = report.repository
    if isinstance(snapshot, Mapping):
        counts = snapshot.get("counts") or {}
        if snapshot.get("models_with_results") is not None:
            rows.append(("models with benchmark results", str(snapshot["models_with_results"])))
        if snapshot.get("benchmark_datasets") is not None:
            rows.append(("benchmark datasets", str(snapshot["benchmark_datasets"])))
        for table in ("models", "results", "curves"):
            if table in counts:
                rows.append((Markdown("rows in {}").format(code(table)), str(counts[table])))
        protocols = snapshot.get("protocols") or []
        if protocols:
            rows.append(("benchmark protocols", Markdown(", ").join(code(p.get("key")) for p in protocols)))
        if snapshot.get("source"):
            rows.append(("repository", str(snapshot["source"])))
    recall = report.recall
    if recall is not None:
        rows.append(("models ranked by the recall", str(len(recall.ranking))))
        if recall.clusters:
            multi = sum(1 for cluster in recall.clusters if len(cluster) > 1)
            rows.append(("clusters", f"{len(recall.clusters)} ({multi} with several models)"))
        if recall.new_models:
            rows.append(("models without benchmark results", str(len(recall.new_models))))
    excluded = report.excluded_benchmark_datasets
    if excluded:
        rows.append(
            ("benchmark datasets held out", Markdown(", ").join(code(display_path(d)) for d in excluded))
        )
    return [(label[:1].upper() + label[1:], value) for label, value in rows]


def _facts(report: SelectionReport, target: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    """The bullet list under the target heading: target, metric, then the repository snapshot."""
    facts = [("Target dataset", target["ref"])] if target["ref"] else []
    metric = f"{report.metric} on the target's validation split"
    if report.test_score is not None:
        metric += " (the selected model is also scored on the test split)"
    return [*facts, ("Metric", metric), *_snapshot_rows(report)]


def _recall_view(report: SelectionReport) -> dict[str, Any] | None:
    recall = report.recall
    if recall is None:
        return None
    proxy = str(recall.proxy or "proxy")
    rows = []
    for entry in recall.entries:
        proxy_value = finite(entry.proxy)
        proxy_text: Markdown | str = _fmt(proxy_value)
        if proxy_value is not None and entry.proxy_model and entry.proxy_model != entry.model_id:
            proxy_text = Markdown("{} (of {})").format(proxy_text, code(entry.proxy_model))
        rows.append(
            {
                "rank": entry.rank,
                "model": _model_ref(entry.model_id),
                "score": _fmt(entry.score),
                "mean": _fmt(entry.mean_score),
                "proxy": proxy_text,
                "why": score_source(entry, recall.scope),
            }
        )
    recalled = set(recall.models)
    clusters = []
    for index, members in enumerate(recall.clusters):
        if not recalled.intersection(members) or len(members) < 2:
            continue  # a large repository has hundreds of clusters: show those the recall drew on
        shown = [Markdown("**{}**").format(code(m)) if m in recalled else code(m) for m in members[:8]]
        if len(members) > 8:
            shown.append(f"and {len(members) - 8} more")
        clusters.append(
            {
                "cluster": index,
                "size": len(members),
                "representative": code(recall.representatives.get(index, MISSING)),
                "members": Markdown(", ").join(shown),
            }
        )
    all_clusters = recall.clusters
    notes = list(recall.notes)
    skipped = [Markdown("{}: {}").format(code(m), r) for m, r in sorted(recall.skipped.items())]
    return {
        "proxy": proxy,
        "proxy_upper": proxy.upper() if proxy in ("leep", "logme", "nce") else proxy,
        "proxied": len(recall.proxied_models),
        "proxy_seconds": _fmt(recall.proxy_seconds, 1),
        "ranked": len(recall.ranking),
        "top_k": recall.top_k,
        "scope": recall.scope,
        "rule": RULE_SUMMARIES.get(recall.scope, ""),
        "threshold": _fmt(recall.threshold, 3) if recall.threshold is not None else None,
        "k_largest": recall.k_largest,
        "rows": rows,
        "clusters": clusters,
        "n_clusters": len(all_clusters),
        "n_multi": sum(1 for cluster in all_clusters if len(cluster) > 1),
        "n_singletons": sum(1 for cluster in all_clusters if len(cluster) == 1),
        "fallback": recall.fallback,
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
        epoch = finite(raw.get("round"))
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
                    "decision": Markdown("**stop**") if stop else "continue",
                    "reason": decision.get("reason") or "",
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


def _candidate_rows(candidates: list[Candidate]) -> list[dict[str, Markdown | str]]:
    rows = []
    for c in candidates:
        outcome: Markdown | str
        if c.selected:
            outcome = Markdown("**selected**")
        elif c.state == "stopped":
            outcome = f"stopped after epoch {_epoch_text(c.last_epoch)}: {c.reason or ''}"
        elif c.state == "failed":
            outcome = f"failed: {c.reason or ''}"
        else:
            outcome = c.state
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
    spent = finite(selection.get("epochs_spent"))
    brute = finite(selection.get("brute_force_epochs"))
    brute_all = finite(selection.get("brute_force_repository_epochs"))
    halving = finite(selection.get("successive_halving_epochs"))
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


def _budget_view(report: SelectionReport) -> dict[str, Any] | None:
    """A budgeted selection's account (``selection["budget"]``): the plan, what it cost, how it shrank."""
    account = report.selection.get("budget")
    if not isinstance(account, Mapping):
        return None
    unit = "epochs" if account.get("unit") == "epochs" else "s"
    selected = account.get("selected") if isinstance(account.get("selected"), Mapping) else {}
    return {
        "budget": f"{account.get('budget')} {unit}",
        "spent": f"{_fmt(account.get('spent_by_selection'), 1)} {unit}",
        "wall": _fmt(account.get("wall_time_s"), 0),
        "within": bool(account.get("within_budget")),
        "plan": [str(line) for line in account.get("plan") or []],
        "shrinks": [str(line) for line in account.get("shrinks") or []],
        "model": str(selected.get("model_id")),
        "learning_rate": str(selected.get("learning_rate")),
    }


def _reproduce_view(report: SelectionReport) -> dict[str, Any]:
    version_rows = [(name, str(value)) for name, value in report.versions.items() if value]
    if not version_rows and report.hfselect_version:
        version_rows = [("hfselect", str(report.hfselect_version))]
    command, version = report.command, report.hfselect_version
    block = None
    if command:
        # A fence longer than any run of backticks in the command: the command cannot close it.
        header = f"# with hfselect{' ' + one_line(version) if version else ''} and the same model repository"
        block = code_block(f"{header}\n{redact_secrets(str(command))}", "bash")
    return {
        "block": block,
        "versions": version_rows,
        "seed": report.protocol.get("seed"),
        "study": report.study,
        "schedule": report.schedule,
    }


def _title(report: SelectionReport, target: Mapping[str, Any]) -> str:
    if target["name"]:
        return f"model selection for {target['name']}"
    return f"model-selection study {report.study or ''}".strip()


def report_card_context(report: SelectionReport, *, plot_name: str | None = PLOT_NAME) -> dict[str, Any]:
    """Everything the template shows, prepared (escaped, formatted, linked) for Markdown."""
    candidates = report.candidates
    selected = next((c for c in candidates if c.selected), None)
    target = _target_view(report.target)
    selected_id = report.selected_model
    return {
        "title": _title(report, target)[:1].upper() + _title(report, target)[1:],
        "target": target,
        "metric": report.metric,
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
        "budget": _budget_view(report),
        "gap": _gap_view(report),
        "reproduce": _reproduce_view(report),
        "plot": url(plot_name) if plot_name else None,
        "paper_url": url(PAPER_URL),
        "study_source": report.source == "study",
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
    report = SelectionReport.from_json(report) if not isinstance(report, SelectionReport) else masked(report)
    card_data = report_card_data(report, repo_type=repo_type, includes_model=includes_model)
    context = report_card_context(report, plot_name=plot_name)
    card_class = ModelCard if repo_type == "model" else DatasetCard
    card = render_card(
        card_class, card_data, TEMPLATE_PATH, repo_type=repo_type, includes_model=includes_model, **context
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
    ``public`` (what a push uses) writes the card and the JSON of :meth:`SelectionReport.public`:
    no absolute local path in either.
    """
    from hfselect.cards.plot import plot_learning_curves

    if not isinstance(report, SelectionReport):
        report = SelectionReport.from_json(report)
    if public:  # the card is made from the public report too: the YAML header and the command line
        report = report.public()
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Everything is rendered into a scratch folder first and moved in only once all of it
        # rendered: a report that cannot be drawn or rendered leaves the folder (its report.json
        # above all) as it was. The scratch folder sits inside ``folder``, so the moves are renames.
        with tempfile.TemporaryDirectory(prefix=".hfselect-render-", dir=folder) as scratch:
            staged = Path(scratch)
            plotted = plot_learning_curves(report, staged / PLOT_NAME)
            card = render_report_card(
                report,
                repo_type=repo_type,
                includes_model=includes_model,
                plot_name=PLOT_NAME if plotted else None,
            )
            report.to_json(staged / REPORT_JSON)
            card.save(staged / CARD_NAME)
            written = {}
            for name in (REPORT_JSON, PLOT_NAME, CARD_NAME):
                if (staged / name).exists():
                    os.replace(staged / name, folder / name)
                    written[name] = folder / name
    except OSError as error:
        raise HfSelectError(f"cannot write the report folder {folder}: {error.strerror or error}") from error
    return written
