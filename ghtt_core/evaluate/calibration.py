"""Calibration of action scores: how far a reported top-1 score can be read as the probability that the label is
right. Reliability diagram (accuracy per score bin) and expected calibration error (ECE: the bin-size weighted mean
gap between accuracy and mean score), as in Guo et al., "On Calibration of Modern Neural Networks" (ICML 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Reliability:
    """Per score bin [edges[i], edges[i + 1]): count, mean score, accuracy (NaN for empty bins)."""

    edges: np.ndarray
    count: np.ndarray
    mean_score: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        used = self.count > 0
        weights = self.count[used] / self.count.sum()
        return float(np.sum(weights * np.abs(self.accuracy[used] - self.mean_score[used])))

    def to_dict(self) -> dict:
        def numbers(values):
            return [None if np.isnan(v) else round(float(v), 4) for v in values]

        return {"ece": round(self.ece, 4), "samples": int(self.count.sum()), "bin_edges": numbers(self.edges),
                "count": self.count.tolist(), "mean_score": numbers(self.mean_score),
                "accuracy": numbers(self.accuracy)}


def reliability(scores, correct, bins: int = 10) -> Reliability:
    """scores (N,) in [0, 1], correct (N,) bool -> Reliability over `bins` equal-width bins (1.0 falls in the last)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    correct = np.asarray(correct, bool).reshape(-1)
    if scores.shape != correct.shape or not len(scores):
        raise ValueError(f"need as many scores as outcomes (and at least one), got {scores.shape} / {correct.shape}")
    if not ((scores >= 0) & (scores <= 1)).all():
        raise ValueError("scores must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum((scores * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_score = np.bincount(index, scores, bins) / count
        accuracy = np.bincount(index, correct.astype(float), bins) / count
    return Reliability(edges, count, mean_score, accuracy)


def plot_reliability(path, curves: dict, title: str):
    """curves: {name: Reliability} drawn as reliability diagrams side by side, with counts below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(curves), figsize=(4.6 * len(curves), 6.4),
                                gridspec_kw={"height_ratios": [3, 1]}, squeeze=False)
    for column, (name, curve) in enumerate(curves.items()):
        top, bottom = axes[0, column], axes[1, column]
        centres = (curve.edges[:-1] + curve.edges[1:]) / 2
        width = curve.edges[1] - curve.edges[0]
        top.bar(centres, np.nan_to_num(curve.accuracy), width=width * 0.9, color="tab:blue", label="accuracy")
        top.plot([0, 1], [0, 1], "--", color="0.4", label="perfect calibration")
        top.plot(centres, curve.mean_score, "o", color="tab:orange", markersize=4, label="mean score in bin")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_title(f"{name}\nECE {curve.ece:.3f} over {int(curve.count.sum())} results", fontsize=9)
        top.set_xlabel("top-1 score")
        top.set_ylabel("fraction correct")
        top.legend(fontsize=7, loc="upper left")
        bottom.bar(centres, curve.count, width=width * 0.9, color="0.6")
        bottom.set_xlim(0, 1)
        bottom.set_xlabel("top-1 score")
        bottom.set_ylabel("results")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
