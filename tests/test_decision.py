"""The decision rule travels with the model, and a personal neutral: from checkpoint to ONNX to every output."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from clips import face_scene, write_clip
from conftest import ROOT

from emotion.calibration import Calibration, CalibrationCapture, CalibrationError
from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.classes import EMOTIONS
from emotion.decision import DecisionRule, softmax
from emotion.recognizer import EmotionRecognizer
from emotion.results import FaceResult
from training.balance import TAU_GRID, choose_tau, confusions_by_tau

PRIOR = (0.09, 0.016, 0.036, 0.267, 0.146, 0.123, 0.322)  # FER+'s vote shares, roughly


@pytest.fixture(scope="module")
def decided_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The tiny model with a strong logit adjustment and a typical neutral, as training.decide writes them."""
    ckpt = load_checkpoint(tiny_checkpoint)
    path = tmp_path_factory.mktemp("decided") / "decided.pt"
    neutral = tuple(float(v) for v in np.linspace(-1, 1, 7))
    save_checkpoint(path, ckpt.model, mean=ckpt.mean, std=ckpt.std, metadata=ckpt.metadata,
                    decision=DecisionRule(PRIOR, 1.0, neutral))
    return path


def test_adjustment_subtracts_tau_log_prior():
    logits = np.zeros((1, 7), np.float32)
    rule = DecisionRule(PRIOR, 0.5)
    np.testing.assert_allclose(rule.adjust(logits)[0], -0.5 * np.log(np.array(PRIOR) / sum(PRIOR)), rtol=1e-6)
    assert EMOTIONS[int(rule.adjust(logits).argmax())] == "disgust"  # the rarest class gains most
    np.testing.assert_allclose(DecisionRule().probabilities(logits), softmax(logits))  # no rule: plain softmax


def test_a_checkpoint_without_a_rule_decides_as_before(tiny_checkpoint):
    assert load_checkpoint(tiny_checkpoint).decision == DecisionRule()


@pytest.mark.parametrize("onnx_backend", ["onnxruntime", "opencv"])
def test_onnx_and_torch_give_the_same_adjusted_labels(decided_checkpoint, tmp_path, onnx_backend):
    from training.export import export_onnx

    onnx = export_onnx(decided_checkpoint, tmp_path / "decided.onnx")
    opencv = EmotionRecognizer(onnx, device="cpu", detector="haar", backend=onnx_backend)
    torch_backend = EmotionRecognizer(decided_checkpoint, device="cpu", detector="haar", backend="torch")
    assert opencv.decision == torch_backend.decision == load_checkpoint(decided_checkpoint).decision
    assert opencv.model_id == torch_backend.model_id  # twins: one calibration serves both
    faces = list(np.random.default_rng(3).integers(0, 255, (200, 48, 48), dtype=np.uint8))
    adjusted = opencv.classify(faces).argmax(1)
    np.testing.assert_array_equal(torch_backend.classify(faces).argmax(1), adjusted)
    plain = softmax(opencv.logits(faces)).argmax(1)
    assert (plain != adjusted).any()  # the rule really moved some decisions


def test_training_evaluate_applies_the_rule(decided_checkpoint, tmp_path, tiny_checkpoint):
    from training.evaluate import classifier_probabilities, open_evaluated

    faces = np.random.default_rng(4).integers(0, 255, (64, 48, 48), dtype=np.uint8)
    decided = classifier_probabilities(open_evaluated(str(decided_checkpoint), "cpu", "float32"), faces)
    plain = classifier_probabilities(open_evaluated(str(tiny_checkpoint), "cpu", "float32"), faces)
    np.testing.assert_allclose(decided, softmax(np.log(plain) + DecisionRule(PRIOR, 1.0).offsets), atol=1e-5)


def test_tau_is_chosen_for_balance_above_the_accuracy_floor():
    rng = np.random.default_rng(0)
    labels = rng.choice(7, 3000, p=np.array(PRIOR) / sum(PRIOR))
    # A model that knows the answer a little and leans towards the common classes.
    logits = 1.5 * np.eye(7)[labels] + rng.normal(0, 1, (3000, 7)) + np.log(PRIOR)
    confusions = confusions_by_tau(logits, labels, PRIOR)
    free = choose_tau(confusions, floor=0.0)
    assert free.tau > 0.5 and free.meets_floor  # balance alone pulls towards the balanced posterior
    plain_accuracy = choose_tau(confusions, 0.0, select="accuracy").metrics["accuracy"]
    floored = choose_tau(confusions, floor=plain_accuracy - 0.01)
    assert floored.metrics["accuracy"] >= plain_accuracy - 0.01 and floored.tau < free.tau
    assert floored.metrics["balanced_accuracy"] == max(
        s["balanced_accuracy"] for s in map(summary_of, confusions) if s["accuracy"] >= plain_accuracy - 0.01)
    impossible = choose_tau(confusions, floor=1.0)
    assert not impossible.meets_floor and impossible.metrics["accuracy"] == max(
        summary_of(cm)["accuracy"] for cm in confusions)
    assert len(TAU_GRID) == len(confusions)


def summary_of(cm: np.ndarray) -> dict:
    from training.metrics import summarize_confusion

    return summarize_confusion(cm)


# --- the personal neutral ---------------------------------------------------------------------------
def face(box=(200, 120, 200, 200), logits=(0, 0, 0, 0, 2, 0, 1), landmarks=None) -> FaceResult:
    probabilities = softmax(np.array([logits], np.float32))[0]
    return FaceResult(box, landmarks, dict(zip(EMOTIONS, probabilities, strict=True)),
                      EMOTIONS[int(probabilities.argmax())], float(probabilities.max()), np.array(logits, np.float32))


GREY = np.full((480, 640, 3), 128, np.uint8)


def capture_of(frames: list[list[FaceResult]], image: np.ndarray = GREY) -> CalibrationCapture:
    capture = CalibrationCapture("model-sha", "model.onnx", duration=1.0)
    for i, faces in enumerate(frames):
        capture.add(image, faces, i / 30)
    return capture


def test_a_steady_stern_face_calibrates_to_its_mean_logits():
    stern = [[face(logits=(2, 0, 0, 0, 1, 0, 1))] for _ in range(30)]  # reads "angry" at rest: never refused
    calibration = capture_of(stern).finish()
    assert calibration.frames == 30 and calibration.model_id == "model-sha"
    np.testing.assert_allclose(calibration.baseline, (2, 0, 0, 0, 1, 0, 1), atol=1e-6)


@pytest.mark.parametrize("frames,image,reason", [
    ([[]] * 30, GREY, "No face found"),
    ([[face(), face(box=(10, 10, 80, 80))]] * 30, GREY, "More than one face"),
    ([[face()]] * 30, np.full((480, 640, 3), 15, np.uint8), "Too dark"),
    ([[face(box=(200 + 40 * (i % 2), 120, 200, 200))] for i in range(30)], GREY, "moved"),
    ([[face(landmarks=[[250, 180], [350, 180], [390, 230], [270, 280], [330, 280]])]] * 30, GREY, "turned away"),
    ([[face()]] * 5, GREY, "Too few frames"),
    ([[face(logits=(0, 0, 0, 0, 0, 0, 3))]] * 15 + [[face(logits=(0, 0, 0, 4, 0, 0, 0))]] * 15, GREY,
     "expression changed"),
    ([[face(logits=(0, 0, 0, 4, 0, 0, 1))]] * 30, GREY, "smile"),
    ([[face(logits=(0, 0, 0, 0, 0, 4, 1))]] * 30, GREY, "surprise"),
])
def test_a_capture_that_is_no_resting_face_is_refused_with_one_line(frames, image, reason):
    with pytest.raises(CalibrationError, match=reason) as refused:
        capture_of(frames, image).finish()
    assert "\n" not in str(refused.value) and "try again" in str(refused.value)


def test_calibration_shifts_the_resting_face_onto_the_typical_neutral():
    neutral = (0.0, -1.0, -1.0, 0.0, 1.0, -0.5, 3.0)
    rule = DecisionRule(PRIOR, 0.0, neutral)
    stern = np.array([[2.5, -1.0, -1.0, 0.0, 2.0, -0.5, 1.5]], np.float32)  # reads angry
    assert EMOTIONS[int(rule.adjust(stern).argmax())] == "angry"
    calibrated = rule.calibrated(stern[0])
    np.testing.assert_allclose(calibrated.adjust(stern)[0], neutral, atol=1e-6)
    assert EMOTIONS[int(calibrated.adjust(stern).argmax())] == "neutral"
    assert calibrated.calibrated(None) == rule and calibrated.to_dict() == rule.to_dict()  # never stored with the model


def test_save_is_atomic_private_and_load_refuses_damage(tmp_path):
    calibration = capture_of([[face()]] * 20).finish()
    path = tmp_path / "calibration.json"
    calibration.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Calibration.load(path) == calibration
    path.write_text('{"format": "moodtunes-calibration", "baseline": [1, 2]')  # cut short
    with pytest.raises(CalibrationError, match="Cannot read the calibration"):
        Calibration.load(path)
    with pytest.raises(CalibrationError, match="No calibration at"):
        Calibration.load(tmp_path / "none.json")


def test_a_calibration_of_another_model_is_ignored_with_a_note(decided_checkpoint):
    recognizer = EmotionRecognizer(decided_checkpoint, device="cpu", detector="haar")
    other = Calibration((0.0,) * 7, "another-sha", "other.onnx", 20, "2026-11-25T00:00:00+00:00")
    recognizer.calibration = other
    assert recognizer.calibration is None and "another model (other.onnx)" in recognizer.calibration_note
    mine = Calibration((0.0,) * 7, recognizer.model_id, "decided.pt", 20, "2026-11-25T00:00:00+00:00")
    recognizer.calibration = mine
    assert recognizer.calibration == mine and recognizer.calibration_note == ""
    assert recognizer.decision.shift is not None


def test_a_model_without_a_typical_neutral_ignores_a_calibration_with_a_note(tiny_checkpoint):
    recognizer = EmotionRecognizer(tiny_checkpoint, device="cpu", detector="haar", backend="torch")
    recognizer.calibration = Calibration((0.0,) * 7, recognizer.model_id, "tiny.pt", 20, "2026-11-25T00:00:00+00:00")
    assert recognizer.calibration is None and "(tiny.pt) stores no typical neutral face" in recognizer.calibration_note


def test_recognizer_calibrate_refuses_a_smile_and_keeps_nothing(astronaut_bgr):
    recognizer = EmotionRecognizer(device="cpu", detector="haar")  # the shipped model; the astronaut smiles
    with pytest.raises(CalibrationError, match="smile"):
        recognizer.calibrate([face_scene(astronaut_bgr)] * 12)
    assert recognizer.calibration is None


def test_calibrate_command_refuses_a_clip_without_a_face_and_writes_nothing(tmp_path, decided_checkpoint):
    clip = write_clip(tmp_path / "empty.avi", [np.full((240, 320, 3), 120, np.uint8)] * 60, fps=15)
    out = tmp_path / "me.json"
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "calibrate", "--source", str(clip),
                             "--detector", "haar", "--checkpoint", str(decided_checkpoint), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: No face found") and not out.exists()


def test_headless_summary_says_which_calibration_was_used(tmp_path, face_video, decided_checkpoint):
    recognizer = EmotionRecognizer(decided_checkpoint, device="cpu", detector="haar")
    path = tmp_path / "me.json"
    Calibration((0.0,) * 7, recognizer.model_id, "decided.pt", 20, "2026-11-25T00:00:00+00:00").save(path)

    def summary(*args: str) -> dict:
        result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--source", str(face_video), "--benchmark",
                                 "--detector", "haar", "--checkpoint", str(decided_checkpoint), *args],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    assert summary("--calibration", str(path))["calibration"] == str(path)
    assert summary("--no-calibration")["calibration"] is None


def test_recognizer_calibrate_refuses_a_model_without_a_typical_neutral(tiny_checkpoint, astronaut_bgr):
    recognizer = EmotionRecognizer(tiny_checkpoint, device="cpu", detector="haar", backend="torch")
    with pytest.raises(CalibrationError, match=r"\(tiny.pt\) stores no typical neutral face"):
        recognizer.calibrate([face_scene(astronaut_bgr)], photos=True)
