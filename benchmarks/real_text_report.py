"""The tables ``real_text.py`` prints: checkpoints, proxies, recall rules, and select against brute force."""

from __future__ import annotations

from typing import Any

from _shared import table

SELECT_COLUMNS = (
    "target",
    "candidates",
    "selected",
    "brute force",
    "regret",
    "select s",
    "brute s",
    "speedup",
    "select CPU s",
    "brute CPU s",
    "CPU speedup",
    "epochs",
)


def print_report(report: dict[str, Any]) -> None:
    """The tables on stdout."""
    print("\nCheckpoints (loaded with safetensors only, no remote code):")
    print(
        table(
            ["model", "architecture", "parameters", "tokenizer", "fine-tune ex/s", "proxy ex/s"],
            [
                [
                    name,
                    info["architecture"],
                    f"{info['parameters'] / 1e6:.1f}M",
                    info["tokenizer"],
                    f"{report['throughput'][name]['finetune_examples_per_second']:.1f}",
                    f"{report['throughput'][name]['proxy_examples_per_second']:.0f}",
                ]
                for name, info in report["checkpoints"].items()
            ],
        )
    )
    print("\nProxies against fine-tuned test scores (Spearman across models, per target):")
    print(
        table(
            ["proxy", "mean Spearman", "top-1 hits", "targets"],
            [
                [
                    p,
                    "n/a" if s["mean_spearman"] is None else f"{s['mean_spearman']:.2f}",
                    s["top1_hits"],
                    s["targets"],
                ]
                for p, s in report["proxies"].items()
            ],
        )
    )
    rules = report["recall_rules"]
    ks = [key[4:] for key in next(iter(rules.values())) if key.startswith("hit@")]
    print("\nRecall rules, leave one dataset out (hit rate / mean regret of the best in the top K):")
    print(
        table(
            ["proxy, rule", *(f"K={k}" for k in ks)],
            [
                [rule, *(f"{row[f'hit@{k}']:.2f} / {row[f'regret@{k}']:.3f}" for k in ks)]
                for rule, row in rules.items()
            ],
        )
    )
    if report["check"]:
        check = report["check"]
        scores = ", ".join(f"{m} {v:.3f}" for m, v in check["test_scores"].items())
        rhos = ", ".join(
            f"{p} {s['mean_spearman']:.2f}"
            for p, s in check["proxies"].items()
            if s["mean_spearman"] is not None
        )
        print(f"\nChecked on {check['dataset']}: fine-tuned test scores {scores}; Spearman over them: {rhos}")
    print("\nLeave one dataset out: select against brute force:")
    rows = []
    for target, row in report["targets"].items():
        rows.append(
            [
                target,
                ",".join(row["select"]["candidates"]),
                row["select"]["selected"],
                row["brute_force"]["pick"],
                f"{row['regret']:.3f}",
                f"{row['select_total_seconds']:.0f}",
                f"{row['brute_force']['seconds']:.0f}",
                f"{row['speedup']:.1f}x",
                f"{row['select_total_cpu_seconds']:.0f}",
                f"{row['brute_force']['cpu_seconds']:.0f}",
                f"{row['cpu_speedup']:.1f}x",
                f"{row['select']['epochs_spent']}/{row['brute_force']['epochs']}",
            ]
        )
    print(table(SELECT_COLUMNS, rows))
