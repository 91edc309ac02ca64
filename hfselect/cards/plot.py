"""The learning-curves plot of a selection report (PNG, matplotlib's Agg renderer).

One line per candidate (validation score against epoch); a cross where each dropped candidate was
stopped; the selected model drawn thicker, on top, with a star at its final score. The figure is
built with the object-oriented API (``Figure`` + ``FigureCanvasAgg``) rather than pyplot, so it
needs no display, leaves matplotlib's global backend and state alone, and is safe in threads.
"""

from __future__ import annotations

import os
from pathlib import Path

from hfselect.cards.names import model_name, target_name
from hfselect.cards.selection_report import SelectionReport

WINNER_COLOR = "#d62728"
# Muted colours for the other candidates (tab10 without its red, which marks the winner).
OTHER_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _short(model_id: str, width: int = 38) -> str:
    name = model_name(model_id)
    return name if len(name) <= width else name[: width - 1] + "\u2026"


def plot_learning_curves(
    report: SelectionReport, path: str | os.PathLike[str], *, dpi: int = 150
) -> Path | None:
    """Draw the candidates' validation curves into the PNG ``path``; None when no candidate has a curve.

    Args:
        report: the selection report.
        path: where to write the PNG (its folder must exist).
        dpi: resolution; the figure is 8 x 4.5 inches.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    candidates = [c for c in report.candidates if c.curve]
    if not candidates:
        return None
    figure = Figure(figsize=(8, 5), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colors = iter(OTHER_COLORS * (len(candidates) // len(OTHER_COLORS) + 1))
    handles: dict[str, object] = {}
    for candidate in candidates:
        x, y = candidate.epochs, candidate.curve
        if candidate.selected:
            # zorder puts the winner on top of the lines it crosses.
            (line,) = axes.plot(x, y, color=WINNER_COLOR, linewidth=3, marker="o", markersize=5, zorder=5)
            axes.plot(x[-1], y[-1], marker="*", markersize=17, color=WINNER_COLOR, markeredgecolor="black",
                      linestyle="none", zorder=6)  # fmt: skip
            axes.annotate(f"{y[-1]:.3f}", (x[-1], y[-1]), textcoords="offset points", xytext=(0, 11),
                          ha="center", fontsize=9, fontweight="bold", color=WINNER_COLOR)  # fmt: skip
            handles[f"{_short(candidate.model_id)} (selected)"] = line
            continue
        color = next(colors)
        (line,) = axes.plot(x, y, color=color, linewidth=1.6, marker="o", markersize=3.5, alpha=0.85)
        label = _short(candidate.model_id)
        if candidate.state == "stopped":
            label += f" (stopped after epoch {candidate.last_epoch:g})"
            axes.plot(x[-1], y[-1], marker="X", markersize=11, color=color, markeredgecolor="black",
                      linestyle="none", zorder=4)  # fmt: skip
        handles[label] = line
    # The winner first in the legend, then the others in candidate order, then what a cross means.
    ordered = sorted(handles.items(), key=lambda item: not item[0].endswith("(selected)"))
    if any(c.state == "stopped" and not c.selected for c in candidates):
        (cross,) = axes.plot([], [], marker="X", markersize=9, color="white", markeredgecolor="black",
                             linestyle="none")  # fmt: skip
        ordered.append(("where a candidate was stopped", cross))
    all_epochs = [e for c in candidates for e in c.epochs]
    if all(float(e).is_integer() for e in all_epochs):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    low, high = min(all_epochs), max(all_epochs)
    pad = max(0.2, (high - low) * 0.04)
    axes.set_xlim(low - pad, high + pad)
    axes.margins(y=0.12)  # room for the winner's score above its star
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"validation {report.metric}")
    if report.target:
        title = f"Fine selection on {target_name(report.target)}: {len(candidates)} candidates"
    else:  # a callback study records no target
        title = f"Study {report.study}: {len(candidates)} runs"
    axes.set_title(title, fontsize=11)
    axes.grid(True, alpha=0.3)
    figure.legend(
        [handle for _, handle in ordered],
        [label for label, _ in ordered],
        loc="outside lower center",
        ncol=2 if len(ordered) > 3 else 1,
        fontsize=8,
        frameon=False,
    )
    out = Path(path)
    figure.savefig(out, format="png", dpi=dpi)
    return out
