"""training.evaluate_photos on a tiny folder of real photos: what it counts, and what it refuses."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from clips import face_scene

from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.decision import DecisionRule
from training.evaluate_photos import main

PRIOR = (0.09, 0.016, 0.036, 0.267, 0.146, 0.123, 0.322)  # FER+'s vote shares, roughly
NEUTRAL = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0)  # a typical neutral that outweighs any adjustment for rarity


@pytest.fixture(scope="module")
def calibratable_onnx(tiny_checkpoint, tmp_path_factory):
    """The tiny model with a balanced decision (tau 1) and a typical neutral, as training.decide writes them,
    exported as the app runs it. Its logits are all near 0, so its decision reads every face as the rarest
    class, disgust, and its plain argmax never does."""
    from training.export import export_onnx

    ckpt = load_checkpoint(tiny_checkpoint)
    folder = tmp_path_factory.mktemp("calibratable")
    save_checkpoint(folder / "decided.pt", ckpt.model, mean=ckpt.mean, std=ckpt.std, metadata=ckpt.metadata,
                    decision=DecisionRule(PRIOR, 1.0, NEUTRAL))
    return export_onnx(folder / "decided.pt", folder / "decided.onnx")


@pytest.fixture
def photos(tmp_path, astronaut_bgr):
    """alice: two neutral photos and a happy one; bob: a "neutral" photo with no face in it; carol: no neutral."""
    root = tmp_path / "photos"
    (root / "alice").mkdir(parents=True)
    (root / "bob").mkdir()
    (root / "carol").mkdir()
    cv2.imwrite(str(root / "alice" / "neutral.jpg"), face_scene(astronaut_bgr, dx=60))
    cv2.imwrite(str(root / "alice" / "neutral_2.jpg"), face_scene(astronaut_bgr, dx=220))
    cv2.imwrite(str(root / "alice" / "happy.png"), face_scene(astronaut_bgr, dx=140))
    cv2.imwrite(str(root / "bob" / "neutral.jpg"), np.full((480, 640, 3), 120, np.uint8))
    cv2.imwrite(str(root / "bob" / "happy_1.jpg"), face_scene(astronaut_bgr, dx=100))
    cv2.imwrite(str(root / "carol" / "happy.jpg"), face_scene(astronaut_bgr, dx=180))
    (root / "LICENSE.txt").write_text("the set's licence travels with it and is skipped\n")
    return root


def run(capsys, *args: str) -> tuple[int, dict | None, list[str]]:
    """The exit status, the JSON line (on success) and what stderr says, less the progress bar."""
    code = main(list(args))
    out, err = capsys.readouterr()
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("photos:")]
    return code, json.loads(out.splitlines()[-1]) if code == 0 else None, said


def test_counts_every_photo_and_never_reads_the_calibration_photo_as_compared(photos, calibratable_onnx, capsys):
    code, result, _ = run(capsys, "--photos", str(photos), "--checkpoint", str(calibratable_onnx))
    assert code == 0
    uncalibrated = result["uncalibrated"]
    assert (uncalibrated["photos"], uncalibrated["found"], result["people"]) == (6, 5, 3)
    labels = uncalibrated["labels"]
    assert set(labels) == {"neutral", "happy"}
    assert (labels["neutral"]["photos"], labels["neutral"]["found"]) == (3, 2)  # bob's blank photo has no face
    assert (labels["happy"]["photos"], labels["happy"]["found"]) == (3, 3)
    assert all(sum(row["read_as"].values()) == row["found"] for row in labels.values())
    assert all(row["read_as"]["disgust"] == row["found"] for row in labels.values())  # the model's decision

    calibration = result["calibration"]
    assert calibration["people"]["alice"] == {"calibrated_on": "neutral.jpg"}
    assert calibration["people"]["bob"]["refused"].startswith("No face found")
    assert calibration["people"]["carol"] == {"no_neutral_photo": True}
    assert calibration["calibrated"] == 1 and list(calibration["refused"].values()) == [1]
    assert calibration["without_neutral_photo"] == 1
    # alice's other two photos only: neutral.jpg calibrated her, so it is in neither column.
    assert calibration["compared"] == 2
    for column in ("before", "after"):
        table = calibration[column]
        assert table["photos"] == table["found"] == 2
        assert {name: row["found"] for name, row in table["labels"].items()} == {"neutral": 1, "happy": 1}
    # Her calibration moves her resting face onto the typical neutral, so her other neutral photo reads neutral.
    assert calibration["after"]["labels"]["neutral"]["read_as"]["neutral"] == 1
    assert calibration["now_right"] + calibration["now_wrong"] <= calibration["changed"] <= 2


def test_no_decision_reads_the_plain_argmax(photos, calibratable_onnx, capsys):
    code, result, _ = run(capsys, "--photos", str(photos), "--checkpoint", str(calibratable_onnx), "--no-decision")
    assert code == 0 and result["decision"] == "argmax"
    assert all(row["read_as"]["disgust"] == 0 for row in result["uncalibrated"]["labels"].values())
    calibration = result["calibration"]
    assert calibration["compared"] == 2 and calibration["after"]["labels"]["neutral"]["read_as"]["neutral"] == 1


def test_a_model_without_a_typical_neutral_measures_no_calibration(photos, tiny_onnx, capsys):
    code, result, err = run(capsys, "--photos", str(photos), "--checkpoint", str(tiny_onnx))
    assert code == 0 and "calibration" not in result
    assert (result["people"], result["uncalibrated"]["found"]) == (3, 5)
    assert err == [f"warning: {tiny_onnx.name} stores no typical neutral face, so no calibration is measured; "
                   "use a model written by `python -m training.decide`"]


@pytest.mark.parametrize("layout, message", [
    ({}, "No photos in"),
    ({"alice/smiling.jpg": True}, "is not named by its label"),
    ({"neutral.jpg": True}, "is not in a person's folder"),
    ({"set/alice/neutral.jpg": True}, "is a folder inside a person's folder"),
    ({"alice/notes.txt": False}, "No photos in"),
])
def test_an_empty_or_badly_laid_out_folder_is_one_line(tmp_path, astronaut_bgr, capsys, layout, message):
    root = tmp_path / "photos"
    root.mkdir()
    for name, is_photo in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if is_photo:
            cv2.imwrite(str(root / name), face_scene(astronaut_bgr))
        else:
            (root / name).write_text("not a photo\n")
    code, _, err = run(capsys, "--photos", str(root))
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and message in err[0]


def test_photos_that_are_not_a_folder_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "--photos", str(tmp_path / "missing"))
    assert code == 2 and err == [f"error: {tmp_path / 'missing'} is not a folder; --photos takes DIR/<person>/"
                                 "<label>[_n].jpg, with labels among angry, disgust, fear, happy, sad, surprise, "
                                 "neutral."]
