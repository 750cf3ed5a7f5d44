"""Training and evaluation of the emotion model: python -m training.train, .decide, .evaluate,
.evaluate_pipeline, .evaluate_photos, .robustness, .export and .pack (each with --help).

The trainer's parts live beside it: augment (what the network sees), sam, teachers, balance
(the decision rule chosen on validation), provenance (what a checkpoint records), metrics.

They need the training extras: pip install "moodtunes[train]".
"""

import importlib.util
import sys

import emotion  # noqa: F401  (first: its import keeps ONNX Runtime's telemetry off, see emotion/__init__.py)

_missing = [name for name in ("torch", "torchvision", "tqdm") if importlib.util.find_spec(name) is None]
if _missing:
    # One line instead of an ImportError traceback from deep inside a module.
    sys.exit(f'error: training needs {", ".join(_missing)}, which are not installed: pip install "moodtunes[train]"')
