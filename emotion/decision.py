"""How a model's logits become a decision: logit adjustment for balance, and a personal neutral.

A network trained on FER's class frequencies learns them too: a third of FER+ votes say
"neutral", so an ambiguous face is called neutral and a rare expression (disgust, fear) is
rarely called at all. Logit adjustment (Menon et al. 2021, "Long-tail learning via logit
adjustment") moves the decision instead of the network: it subtracts ``tau * log(prior)``
from the logits, where the prior is the class distribution of the training labels. tau 0 is
the plain argmax (best accuracy), tau 1 the argmax of the balanced posterior (best mean
recall when the model is calibrated). A model trained with the logit-adjusted loss already
decides for balance at tau 0, and a negative tau moves it back towards accuracy.

The prior and tau are chosen on validation data by the training code and stored with the
model (checkpoint and ONNX metadata), with the model's typical logits for a neutral face.
A personal calibration (:mod:`emotion.calibration`) adds one more shift: the person's resting
face is moved onto that typical neutral. Every backend and every caller turns logits into
probabilities through :meth:`DecisionRule.probabilities`. A model without these fields keeps
the plain argmax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from emotion.classes import NUM_CLASSES
from emotion.errors import CheckpointError

Vector = tuple[float, ...]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _vector(values: Sequence[float] | None, what: str) -> Vector | None:
    if values is None:
        return None
    vector = tuple(float(v) for v in values)
    if len(vector) != NUM_CLASSES or not np.all(np.isfinite(vector)):
        raise CheckpointError(f"The model's {what} must be {NUM_CLASSES} finite numbers; retrain or re-export it.")
    return vector


@dataclass(frozen=True)
class DecisionRule:
    """Logit adjustment (``prior``, ``tau``), the model's ``typical_neutral`` logits, and a personal ``shift``.

    ``prior``, ``tau`` and ``typical_neutral`` travel with the model; ``shift`` comes from the
    person in front of the camera (:meth:`calibrated`) and is never stored with the model.
    """

    prior: Vector | None = None
    tau: float = 0.0
    typical_neutral: Vector | None = None
    shift: Vector | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prior", _vector(self.prior, "class prior"))
        object.__setattr__(self, "typical_neutral", _vector(self.typical_neutral, "typical neutral logits"))
        object.__setattr__(self, "shift", _vector(self.shift, "calibration shift"))
        if self.prior is not None and min(self.prior) <= 0 or not np.isfinite(self.tau):
            raise CheckpointError("A decision rule needs positive prior shares and a finite tau; "
                                  "retrain or re-export the model.")

    @property
    def offsets(self) -> np.ndarray:
        """What :meth:`adjust` adds to every row of logits: ``shift - tau * log(prior)``."""
        offsets = np.zeros(NUM_CLASSES, dtype=np.float64)
        if self.prior is not None and self.tau != 0:
            prior = np.asarray(self.prior, dtype=np.float64)
            offsets -= self.tau * np.log(prior / prior.sum())
        if self.shift is not None:
            offsets += self.shift
        return offsets.astype(np.float32)

    def adjust(self, logits: np.ndarray) -> np.ndarray:
        """Adjusted logits (N, 7) as float32; their argmax is the decision."""
        return np.asarray(logits, dtype=np.float32) + self.offsets

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The probabilities (N, 7) the app shows and decides by: the softmax of the adjusted logits."""
        return softmax(self.adjust(logits)).astype(np.float32)

    def calibrated(self, baseline: Sequence[float] | None) -> DecisionRule:
        """This rule for a person whose resting face gives ``baseline`` logits (None: no calibration).

        Their logits are shifted by ``typical_neutral - baseline``: what their relaxed face looks
        like to the model becomes what a typical neutral face looks like to it.
        """
        if baseline is None:
            return replace(self, shift=None)
        if self.typical_neutral is None:
            raise CheckpointError("This model stores no typical neutral face, so it cannot use a calibration; "
                                  "use a model written by `python -m training.decide`.")
        shift = np.asarray(self.typical_neutral, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
        return replace(self, shift=tuple(float(s) for s in shift))

    def to_dict(self) -> dict[str, Any]:
        """The model's part, JSON-ready, as the checkpoint and the ONNX metadata store it (no personal shift)."""
        return {"prior": None if self.prior is None else list(self.prior), "tau": float(self.tau),
                "typical_neutral": None if self.typical_neutral is None else list(self.typical_neutral)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DecisionRule:
        """The rule stored with a model; an older model without one gets the plain argmax."""
        if not data:
            return cls()
        try:
            return cls(prior=data.get("prior"), tau=float(data.get("tau") or 0.0),
                       typical_neutral=data.get("typical_neutral"))
        except (TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"The model's decision rule is malformed ({exc}); retrain or re-export it.") from exc


def class_prior(targets: Sequence[Sequence[float]] | np.ndarray) -> Vector:
    """Class shares of training targets (N, 7), one-hot labels or vote distributions alike."""
    totals = np.asarray(targets, dtype=np.float64).sum(0)
    # A class absent from the training data would get log(0); a pseudo-count keeps it finite.
    totals = totals + 1e-3 * totals.sum() / NUM_CLASSES
    return tuple(float(t) for t in totals / totals.sum())
