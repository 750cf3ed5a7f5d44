"""Training and evaluation of the emotion model: python -m training.train, .evaluate, .evaluate_pipeline,
.robustness, .export and .pack (each with --help).

They need the training extras: pip install 'moodtunes[train]'.
"""

import importlib.util
import sys

_missing = [name for name in ("torch", "torchvision", "tqdm") if importlib.util.find_spec(name) is None]
if _missing:
    # One line instead of an ImportError traceback from deep inside a module.
    sys.exit(f"error: training needs {', '.join(_missing)}, which are not installed: pip install 'moodtunes[train]'")
