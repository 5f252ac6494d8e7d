"""Metrics, plots and the report of session_risk against labels (the evaluate job's work).

The baseline is the IsolationForest over session features alone (the `feature_pct` column, the
same forest seqrisk combines with the other detectors); `sequence_only`, `count_only`,
`ngram_only` and `replay_only` (the `sequence_pct`, `count_pct`, `ngram_pct` and `replay_pct`
columns) show the sequence model, the count, n-gram and replay detectors by themselves. Spark reduces the labeled sessions to counts per score bin and label; bins are 0.001
wide on the surprisal scale (-log10 of 1 - percentile/100), so the riskiest sessions, where
alerting happens, stay apart instead of tying at a percentile of 100.00. Metrics and plots come
from those counts (`metrics.py`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seqrisk.detectors.calibration import to_percentile
from seqrisk.detectors.combination import LabelReport
from seqrisk.evaluation.metrics import Binned, at_cutoff, pr_auc, pr_curve, recall_at_budget, roc_auc

log = logging.getLogger("seqrisk")
DETECTORS = {
    "seqrisk": "risk_pct",
    "baseline": "feature_pct",
    "sequence_only": "sequence_pct",
    "count_only": "count_pct",
    "ngram_only": "ngram_pct",
    "replay_only": "replay_pct",
}
BIN_WIDTH = 1000  # bins per unit of surprisal
MAX_SURPRISAL = 15.0  # where double precision stops telling 100 - percentile apart
BUDGETS_PCT = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
NORMAL = "normal"


def binned_counts(labeled: DataFrame, column: str) -> dict[tuple[float, str], int]:
    """{(surprisal bin, label): sessions}; at most 15,001 bins per label. Shuffle: by (bin, label)."""
    tail = F.greatest(1.0 - F.col(column) / 100.0, F.lit(10.0**-MAX_SURPRISAL))
    rows = labeled.groupBy((F.floor(-F.log10(tail) * BIN_WIDTH) / BIN_WIDTH).alias("bin"), "label").count().collect()
    return {(float(r["bin"]), r["label"]): int(r["count"]) for r in rows}


def surprisal_bin(pct: float) -> float:
    """The bin of a percentile (0 to 100): bins at or above it hold exactly the sessions at or above `pct`."""
    return math.floor(-math.log10(max(1.0 - pct / 100.0, 10.0**-MAX_SURPRISAL)) * BIN_WIDTH + 1e-9) / BIN_WIDTH


def _binned(counts: dict[tuple[float, str], int], positive: str | None) -> Binned:
    """Bins with `positive` (None: any anomaly) against normal sessions; other anomalies left out."""
    bins = sorted({b for b, _ in counts})
    index = {b: i for i, b in enumerate(bins)}
    pos, neg = np.zeros(len(bins)), np.zeros(len(bins))
    for (b, label), n in counts.items():
        if label == NORMAL:
            neg[index[b]] += n
        elif positive is None or label == positive:
            pos[index[b]] += n
    return Binned.of(np.array(bins), pos, neg)


def detector_metrics(counts: dict[tuple[float, str], int], cutoff: float, budget_pct: float) -> dict:
    """The stable metrics.json shape for one detector."""
    overall = _binned(counts, None)
    types = sorted({label for _, label in counts} - {NORMAL})
    per_type = {}
    for kind in types:
        b = _binned(counts, kind)
        per_type[kind] = {
            "roc_auc": _clean(roc_auc(b)),
            "recall": _clean(at_cutoff(b, cutoff)["recall"]),
            "recall_at_1pct": _clean(recall_at_budget(overall, 1.0, positives=b.positives)),  # same bins as overall
            "sessions": int(b.positives.sum()),
        }
    return {
        "roc_auc": _clean(roc_auc(overall)),
        "pr_auc": _clean(pr_auc(overall)),
        **{k: _clean(v) for k, v in at_cutoff(overall, cutoff).items()},
        "recall_at_1pct": _clean(recall_at_budget(overall, 1.0)),
        "recall_at_budget": _clean(recall_at_budget(overall, budget_pct)),
        "per_type": per_type,
    }


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def write_plots(out: Path, counts: dict[str, dict], history: dict | None) -> dict[str, str]:
    """PNG plots, by name -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    labels = sorted({label for c in counts.values() for _, label in c})
    fig, axes = plt.subplots(1, len(counts), figsize=(6 * len(counts), 4.5), sharey=True)
    for ax, (name, c) in zip(axes, counts.items()):
        for label in labels:
            hist = np.zeros(100)
            for (b, lab), n in c.items():
                if lab == label:
                    hist[min(int(to_percentile(b)), 99)] += n
            if hist.sum():
                ax.step(
                    np.arange(100), hist / hist.sum(), where="post", label=f"{label} ({int(hist.sum()):,})", lw=2 if label == NORMAL else 1
                )
        ax.set_yscale("log")
        ax.set_title(f"{name}: percentile by class")
        ax.set_xlabel("percentile (0-100)")
    axes[0].set_ylabel("share of the class's sessions")
    axes[-1].legend(fontsize=7)
    plots["score distributions"] = _save(fig, out / "score_distributions.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, c in counts.items():
        precision, recall = pr_curve(_binned(c, None))
        ax.plot(recall, precision, label=f"{name} (PR AUC {pr_auc(_binned(c, None)):.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall, all anomaly types", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend()
    plots["precision-recall"] = _save(fig, out / "precision_recall.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, c in counts.items():
        ax.plot(BUDGETS_PCT, [recall_at_budget(_binned(c, None), b) for b in BUDGETS_PCT], marker="o", label=name)
    ax.set(xscale="log", xlabel="alert budget (% of sessions)", ylabel="recall", title="recall at alert budgets", ylim=(0, 1.02))
    ax.legend()
    plots["recall at alert budgets"] = _save(fig, out / "recall_at_budget.png")

    if history:
        epochs = [h["epoch"] for h in history["history"]]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.plot(epochs, [h["train_loss"] for h in history["history"]], marker="o", label="training")
        ax.plot(epochs, [h["val_loss"] for h in history["history"]], marker="o", label="validation")
        ax.axvline(history["best_epoch"], color="grey", ls=":", label="kept")
        ax.set(xlabel="epoch", ylabel="next-event loss", title="sequence model training")
        ax.legend()
        plots["training history"] = _save(fig, out / "training_history.png")
    return plots


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def _training_labels(metrics: dict) -> list[str]:
    """What the model's training labels did, and that their sessions are left out here."""
    found = metrics.get("training_labels")
    if not found:
        return []
    lines = ["", "The model was trained with labels (`train --labels`): " + " ".join(f"{line}." for line in LabelReport(**found).lines())]
    if metrics["left_out_training_cases"]:
        lines.append(f"The {metrics['left_out_training_cases']:,} labeled sessions it was trained with are left out of this evaluation.")
    return lines


def _dates(metrics: dict) -> str:
    """' of DATE to DATE' when the evaluation was bounded to session dates (`--from/--to`)."""
    dates = metrics.get("session_dates")
    return f" of {dates[0]} to {dates[1]}" if dates else ""


def report_markdown(metrics: dict, plots: dict[str, str], history: dict | None) -> str:
    s, b = metrics["seqrisk"], metrics["baseline"]
    lines = [
        "# seqrisk evaluation",
        "",
        f"{metrics['sessions']:,} sessions{_dates(metrics)}, {metrics['anomalous_sessions']:,} of them anomalous; model {metrics['model_version']}; "
        f"labels {metrics['labels']}. Alerts at risk percentile {metrics['cutoff_pct']} or above; alert budget "
        f"{metrics['alert_budget_pct']} % of sessions. The baseline is the IsolationForest over session features alone; "
        "sequence_only, count_only, ngram_only and replay_only are the sequence model, the count, n-gram and replay detectors"
        " alone (seqrisk combines all five).",
        *_training_labels(metrics),
        "",
        "| metric | " + " | ".join(DETECTORS) + " |",
        "| --- |" + " ---: |" * len(DETECTORS),
    ]
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "recall_at_1pct", "recall_at_budget"):
        lines.append(f"| {key} | " + " | ".join(_fmt(metrics[name][key]) for name in DETECTORS) + " |")
    lines += [
        "",
        "## Per anomaly type",
        "",
        "ROC AUC of the type's sessions against normal ones; recall at the `high` cut-off; recall when alerting on the riskiest 1 % of all sessions.",
        "",
        "| type | sessions | " + " | ".join(f"{name} ROC AUC | {name} recall | {name} recall at 1 %" for name in DETECTORS) + " |",
        "| --- | ---: |" + " ---: | ---: | ---: |" * len(DETECTORS),
    ]
    for kind, m in s["per_type"].items():
        cells = []
        for name in DETECTORS:
            t = metrics[name]["per_type"].get(kind, {})
            cells += [_fmt(t.get("roc_auc")), _fmt(t.get("recall")), _fmt(t.get("recall_at_1pct"))]
        lines.append(f"| {kind} | {m['sessions']:,} | " + " | ".join(cells) + " |")
    lines += ["", "## Findings", ""]
    findings = [
        f"seqrisk {'beats' if (s['pr_auc'] or 0) > (b['pr_auc'] or 0) else 'does not beat'} the baseline on PR AUC ({_fmt(s['pr_auc'])} vs {_fmt(b['pr_auc'])}).",
        f"seqrisk {'beats' if (s['recall_at_1pct'] or 0) > (b['recall_at_1pct'] or 0) else 'does not beat'} the baseline on recall at a 1 % alert budget ({_fmt(s['recall_at_1pct'])} vs {_fmt(b['recall_at_1pct'])}).",
    ]
    weak = [k for k, m in s["per_type"].items() if m["roc_auc"] is not None and m["roc_auc"] < 0.95]
    findings.append(
        "ROC AUC is at least 0.95 for every anomaly type."
        if not weak
        else f"ROC AUC is below 0.95 for: {', '.join(weak)} (see docs/scoring.md for why)."
    )
    lines += [f"- {f}" for f in findings]
    if history:
        lines += [
            "",
            f"Training: {len(history['history'])} epochs on {history['workers']} worker(s) ({history['device']}), best validation loss {history['best_val_loss']:.4f} at epoch {history['best_epoch']}.",
        ]
    lines += ["", "## Plots", ""] + [f"### {title}\n\n![{title}]({file})\n" for title, file in plots.items()]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
