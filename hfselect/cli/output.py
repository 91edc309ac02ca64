"""What the commands print: plain aligned tables, the recall table, the fine selection's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hfselect.cards.selection_report import SelectionReport
    from hfselect.core.recall_result import RecallResult


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print rows as a plain aligned text table."""
    text = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in text]) for i, header in enumerate(headers)]
    print("  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * width for width in widths))
    for row in text:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def print_result_sources(sources: Sequence[dict[str, Any]]) -> None:
    """The results per protocol, with where they come from and whether they have learning curves."""
    if not sources:
        return
    rows = [
        (
            s["protocol"],
            s["results"],
            s["models"],
            s["datasets"],
            ",".join(s["metrics"]),
            s["curves"],
            s["source"],
        )
        for s in sources
    ]
    print_table(rows, ["protocol", "results", "models", "datasets", "metrics", "curves", "source"])


def print_recall(recall: RecallResult) -> None:
    """The recall table: rank, model, what its score came from."""
    from hfselect.core.recall_result import score_source

    for note in recall.notes:
        print(f"note: {note}")
    rows = []
    for entry in recall.entries:
        mean = "-" if entry.mean_score != entry.mean_score else f"{entry.mean_score:.4f}"
        proxy = "-" if entry.proxy is None or entry.proxy != entry.proxy else f"{entry.proxy:.4f}"
        rows.append(
            (entry.rank, entry.model_id, f"{entry.score:.4f}", mean, proxy, score_source(entry, recall.scope))
        )
    print_table(
        rows, ["rank", "model", "recall score", "mean benchmark", f"{recall.proxy} used", "score from"]
    )
    print(
        f"{len(recall.models)} of {len(recall.ranking)} models recalled for {recall.target}; "
        f"{len(recall.proxied_models)} proxy score(s) computed ({recall.proxy}, {recall.proxy_seconds:.1f}s)"
    )
    for model, reason in sorted(recall.skipped.items()):
        print(f"skipped: {model}: {reason}")


def print_selection(report: SelectionReport) -> None:
    """Every candidate's curve and fate, the selected model, and the cost against the baselines."""
    selection = report.selection
    rows = [
        (
            c["model_id"],
            c["epochs"],
            f"{c['seconds']:.1f}",
            " ".join(f"{v:.3f}" for v in c["curve"]),
            c["state"],
            c["reason"] or "",
        )
        for c in selection["candidates"]
    ]
    print_table(rows, ["candidate", "epochs", "seconds", "validation curve", "state", "why it stopped"])
    print(
        f"selected {report.selected_model}: validation {report.metric} {report.selected_score:.4f}"
        + (f", test {report.test_score:.4f}" if report.test_score is not None else "")
    )
    budget = selection.get("budget")
    if budget:
        unit = "epochs" if budget["unit"] == "epochs" else "s"
        print(
            f"budget: {budget['budget']:g} {unit}; the selection spent {budget['spent_by_selection']:.1f} {unit}, "
            f"the whole command {budget['wall_time_s']:.0f} s: "
            + ("within the budget" if budget["within_budget"] else "OVER the budget")
            + (f"; the plan shrank {len(budget['shrinks'])} time(s)" if budget["shrinks"] else "")
        )
    spent = max(selection["epochs_spent"], 1)
    print(
        f"cost: {selection['epochs_spent']} epochs ({selection['wall_time_s']:.0f}s) against "
        f"{selection['brute_force_epochs']} for brute force ({selection['brute_force_epochs'] / spent:.1f}x) and "
        f"{selection['successive_halving_epochs']} for plain successive halving over the same candidates; "
        f"brute force over all {selection['repository_models']} repository models: "
        f"{selection['brute_force_repository_epochs']} epochs "
        f"({selection['brute_force_repository_epochs'] / spent:.1f}x)"
    )
