"""The robustness benchmark: repeatable corruptions, the folder copy matched face by face, one JSON line per model."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest

from training.corruptions import CORRUPTIONS, SEVERITIES, corrupt_all, corrupt_random
from training.robustness import main as robustness_main
from training.robustness import match_folder_copy, model_names


def faces(n: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.integers(40, 200, (n, 48, 48)).astype(np.uint8)
    for i, face in enumerate(out):  # some structure, so equalisation and JPEG keep faces apart
        cv2.circle(face, (10 + i, 24), 8, 250, -1)
    return out


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_keeps_shape_and_type_grows_with_strength_and_repeats(name):
    clean = faces(8)
    changes = []
    for strength in SEVERITIES:
        damaged = corrupt_all(clean, name, strength, seed=3)
        assert damaged.shape == clean.shape and damaged.dtype == np.uint8
        np.testing.assert_array_equal(damaged, corrupt_all(clean, name, strength, seed=3))  # same draws
        changes.append(np.abs(damaged.astype(int) - clean).mean())
    assert changes[0] > 0 and changes[-1] >= changes[0]
    if name != "jpeg":  # JPEG at its mildest (quality 60) still compresses
        np.testing.assert_array_equal(corrupt_all(clean, name, 0.0), clean)  # strength 0: untouched


def test_training_draws_a_photometric_corruption():
    rng = np.random.default_rng(0)
    face = faces(1)[0]
    assert any(not np.array_equal(corrupt_random(face, rng), face) for _ in range(5))


def test_the_equalised_jpeg_copy_is_matched_to_its_originals():
    originals = faces(30)
    copies = []
    for face in originals[::-1]:  # another order, as in the folder layout
        ok, data = cv2.imencode(".jpg", cv2.equalizeHist(face), [cv2.IMWRITE_JPEG_QUALITY, 90])
        copies.append(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))
    match = match_folder_copy(originals, np.stack(copies))
    np.testing.assert_array_equal(match, np.arange(29, -1, -1))
    unrelated = faces(30, seed=9)
    assert (match_folder_copy(unrelated, np.stack(copies)) == -1).all()  # no match is forced


def test_robustness_prints_one_line_per_model_and_a_chart(tmp_path, tiny_onnx, tiny_checkpoint):
    import csv

    data = tmp_path / "fer.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i, face in enumerate(faces(14)):
            w.writerow([i % 7, " ".join(map(str, face.ravel())), "PrivateTest"])
    png = tmp_path / "chart.png"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert robustness_main(["--dataset", "fer2013", "--data", str(data), "--checkpoint", str(tiny_onnx),
                                str(tiny_checkpoint), "--plot", str(png)]) == 0
    assert "corruptions" in err.getvalue() and "evaluate" not in err.getvalue()  # one progress bar, not nested ones
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    onnx_line, pt_line, plot_line = lines
    for line in (onnx_line, pt_line):
        assert line["n"] == 14
        for metric in ("balanced_accuracy", "accuracy"):  # balanced first: what the app is chosen for
            figures = line[metric]
            assert set(figures["corruptions"]) == set(CORRUPTIONS)
            assert all(len(v) == 3 for v in figures["corruptions"].values())
            assert figures["mean_corrupted"] == pytest.approx(
                np.mean([a for v in figures["corruptions"].values() for a in v]))
    assert onnx_line["accuracy"]["clean"] == pt_line["accuracy"]["clean"]  # the twin and its checkpoint agree
    assert onnx_line["balanced_accuracy"]["clean"] == pt_line["balanced_accuracy"]["clean"]
    assert plot_line["plot"] == str(png) and png.stat().st_size > 10_000


def test_each_model_has_its_own_name_in_the_chart():
    # a release and the one before it share a file name; the chart once drew only the last of them
    assert model_names(["checkpoints/emotion_ferplus.onnx", "runs/old/emotion_ferplus.onnx",
                        "checkpoints/emotion_ferplus.int8.onnx"]) == \
        ["checkpoints/emotion_ferplus", "old/emotion_ferplus", "checkpoints/emotion_ferplus.int8"]
    assert model_names(["runs/a/best.onnx", "runs/b/best.onnx"]) == ["a/best", "b/best"]
    assert model_names(["a/best.pt", "a/best.onnx"]) == ["best.pt", "best.onnx"]
    assert model_names(["m.onnx", "m.onnx"]) == ["m.onnx (1)", "m.onnx (2)"]
    assert model_names(["checkpoints/emotion_ferplus.onnx"]) == ["emotion_ferplus"]
