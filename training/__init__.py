"""Training and evaluation of the emotion model (run as python -m training.train / .evaluate)."""
