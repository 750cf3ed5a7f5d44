"""Choosing a model's decision rule on validation data: balanced accuracy first, accuracy as a floor.

The app is judged by whether an angry face is read as angry, not by how often FER's most
common class is guessed right, so models are chosen by balanced accuracy (mean per-class
recall) among the decisions whose plain accuracy stays at or above a floor. The decision is
the logit adjustment of :class:`emotion.decision.DecisionRule`; its tau is searched on a grid.
Confusion matrices per tau add up across torchrun ranks, so the search works data-parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emotion.decision import DecisionRule
from training.metrics import confusion_matrix, summarize_confusion

SELECTIONS = ("balanced", "accuracy")
# tau < 0 moves a balance-trained model back towards accuracy; above 1.5 nothing useful is left.
TAU_GRID = tuple(round(float(t), 2) for t in np.arange(-1.0, 1.5001, 0.05))


@dataclass(frozen=True)
class DecisionChoice:
    """The tau picked for one model on one validation split, with the metrics it gives there."""

    tau: float
    metrics: dict
    meets_floor: bool
    select: str

    @property
    def score(self) -> tuple[bool, float]:
        """What model selection maximises: a decision above the floor beats any below it; above it,
        balanced accuracy decides (or accuracy, with select="accuracy"); below it, accuracy."""
        key = "balanced_accuracy" if self.meets_floor and self.select == "balanced" else "accuracy"
        return (self.meets_floor, self.metrics[key])


def confusions_by_tau(logits: np.ndarray, labels: np.ndarray, prior: tuple[float, ...],
                      taus: tuple[float, ...] = TAU_GRID) -> np.ndarray:
    """Confusion matrices (len(taus), 7, 7) of the adjusted decisions at every tau."""
    return np.stack([confusion_matrix(labels, DecisionRule(prior, tau).adjust(logits).argmax(1)) for tau in taus])


def choose_tau(confusions: np.ndarray, floor: float, select: str = "balanced",
               taus: tuple[float, ...] = TAU_GRID) -> DecisionChoice:
    """The best tau for ``select`` among those with accuracy >= ``floor`` (a fraction).

    ``select="accuracy"`` keeps the plain argmax (tau 0). When no tau reaches the floor, the
    most accurate one is returned with ``meets_floor`` False.
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {SELECTIONS}, not {select!r}")
    summaries = [summarize_confusion(cm) for cm in confusions]
    if select == "accuracy":
        candidates = [taus.index(0.0)]
    else:
        candidates = [i for i, s in enumerate(summaries) if s["accuracy"] >= floor]
    if candidates:
        key = "accuracy" if select == "accuracy" else "balanced_accuracy"
        # Ties go to the tau nearest 0: the smallest change to what the network says.
        best = max(candidates, key=lambda i: (round(summaries[i][key], 9), -abs(taus[i])))
        meets = summaries[best]["accuracy"] >= floor
    else:
        best = max(range(len(taus)), key=lambda i: (summaries[i]["accuracy"], -abs(taus[i])))
        meets = False
    return DecisionChoice(tau=taus[best], metrics=summaries[best], meets_floor=meets, select=select)
