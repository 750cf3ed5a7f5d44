"""How a model's logits become a decision: logit adjustment for balance.

A network trained on FER's class frequencies learns them too: a third of FER+ votes say
"neutral", so an ambiguous face is called neutral and a rare expression (disgust, fear) is
rarely called at all. Logit adjustment (Menon et al. 2021, "Long-tail learning via logit
adjustment") moves the decision instead of the network: it subtracts ``tau * log(prior)``
from the logits, where the prior is the class distribution of the training labels. tau 0 is
the plain argmax (best accuracy), tau 1 the argmax of the balanced posterior (best mean
recall when the model is calibrated). A model trained with the logit-adjusted loss already
decides for balance at tau 0, and a negative tau moves it back towards accuracy.

The prior and tau are chosen on validation data by the training code and stored with the
model (checkpoint and ONNX metadata), so every backend and every caller applies the same
rule through :func:`DecisionRule.adjust`. A model without them keeps the plain argmax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotion.classes import NUM_CLASSES
from emotion.errors import CheckpointError


@dataclass(frozen=True)
class DecisionRule:
    """The class prior of the training labels and the strength ``tau`` of the logit adjustment."""

    prior: tuple[float, ...] | None = None
    tau: float = 0.0

    def __post_init__(self) -> None:
        if self.prior is None:
            return
        prior = np.asarray(self.prior, dtype=np.float64)
        if prior.shape != (NUM_CLASSES,) or not np.all(prior > 0) or not np.isfinite(self.tau):
            raise CheckpointError(f"A decision rule needs {NUM_CLASSES} positive prior shares and a finite tau; "
                                  "retrain or re-export the model.")

    @property
    def offsets(self) -> np.ndarray:
        """What :meth:`adjust` adds to every row of logits: ``-tau * log(prior)`` (zeros without a prior)."""
        if self.prior is None or self.tau == 0:
            return np.zeros(NUM_CLASSES, dtype=np.float32)
        prior = np.asarray(self.prior, dtype=np.float64)
        return (-self.tau * np.log(prior / prior.sum())).astype(np.float32)

    def adjust(self, logits: np.ndarray) -> np.ndarray:
        """Adjusted logits (N, 7) as float32; their argmax is the decision, their softmax the scores."""
        return np.asarray(logits, dtype=np.float32) + self.offsets

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the checkpoint and the ONNX metadata store it."""
        return {"prior": None if self.prior is None else [float(p) for p in self.prior], "tau": float(self.tau)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DecisionRule:
        """The rule stored with a model; an older model without one gets the plain argmax."""
        if not data or data.get("prior") is None:
            return cls()
        try:
            return cls(prior=tuple(float(p) for p in data["prior"]), tau=float(data.get("tau", 0.0)))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"The model's decision rule is malformed ({exc}); retrain or re-export it.") from exc


def class_prior(targets: Sequence[Sequence[float]] | np.ndarray) -> tuple[float, ...]:
    """Class shares of training targets (N, 7), one-hot labels or vote distributions alike."""
    totals = np.asarray(targets, dtype=np.float64).sum(0)
    # A class absent from the training data would get log(0); a pseudo-count keeps it finite.
    totals = totals + 1e-3 * totals.sum() / NUM_CLASSES
    return tuple(float(t) for t in totals / totals.sum())
