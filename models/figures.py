"""Model-card figures: the ROC curve and a calibration (reliability) plot, as PNG bytes.

The only module that imports matplotlib. It draws on a bare ``Figure`` with the Agg canvas (no pyplot, no
global state, no display) and writes PNGs without the ``Software`` text chunk, so the bytes depend on the data
and matplotlib's version only, and a card can commit to them by digest. The calibration plot bins predicted
probabilities into ten equal-width bins (as ``sklearn.calibration.calibration_curve`` with ``strategy="uniform"``)
against the observed fraction of positives (Niculescu-Mizil and Caruana 2005).
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["calibration_png", "roc_png"]


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def roc_png(fpr: npt.ArrayLike, tpr: npt.ArrayLike, auc: float, title: str) -> bytes:
    fig = Figure(figsize=(4.5, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    ax.plot(np.asarray(fpr), np.asarray(tpr), color="tab:blue", linewidth=2, label=f"AUC = {auc:.3f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate", ylabel="True positive rate")
    ax.set_title(f"ROC, held-out set\n{title}", fontsize=9)
    ax.legend(loc="lower right")
    return _png(fig)


def calibration_png(
    predicted: npt.ArrayLike, observed: npt.ArrayLike, counts: npt.ArrayLike, brier: float, title: str
) -> bytes:
    fig = Figure(figsize=(4.5, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="perfectly calibrated")
    ax.plot(np.asarray(predicted), np.asarray(observed), marker="o", color="tab:orange", label=f"Brier = {brier:.3f}")
    for x, y, n in zip(np.asarray(predicted), np.asarray(observed), np.asarray(counts), strict=True):
        ax.annotate(str(int(n)), (float(x), float(y)), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Mean predicted probability", ylabel="Fraction positive")
    ax.set_title(f"Calibration, held-out set (10 bins, n per bin)\n{title}", fontsize=9)
    ax.legend(loc="upper left")
    return _png(fig)
