"""Preprocessing: one implementation, the same numbers in training and inference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from emotion.checkpoint import load_checkpoint
from emotion.decision import softmax
from emotion.device import inference_dtype
from emotion.errors import MoodtunesError
from emotion.preprocess import FER_MEAN, FER_STD, crop_face, eye_angle, normalize, resize_faces, to_bgr, to_gray
from emotion.recognizer import EmotionRecognizer
from training.train import predict_logits


def test_colour_layouts():
    bgr = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    gray = to_gray(bgr)
    assert gray.shape == (20, 30)
    bgra = np.dstack([bgr, np.full((20, 30), 255, np.uint8)])
    assert np.array_equal(to_gray(bgra), gray)
    assert to_gray(gray) is gray
    assert to_gray(gray[:, :, None]).shape == (20, 30)
    assert to_bgr(gray).shape == (20, 30, 3) and to_bgr(bgra).shape == (20, 30, 3)


@pytest.mark.parametrize("bad,message", [
    (np.zeros((0, 0, 3), np.uint8), "Empty image"),
    (np.zeros((10, 10), np.float32), "8-bit"),
    (np.zeros((10, 10, 2), np.uint8), "Unsupported image shape"),
    (None, "Empty image"),
])
def test_bad_images_fail_with_one_clear_line(bad, message):
    with pytest.raises(MoodtunesError, match=message):
        to_gray(bad)


def test_crop_of_a_whole_fer_face_is_the_face_itself():
    face = np.random.default_rng(1).integers(0, 255, (48, 48), dtype=np.uint8)
    assert np.array_equal(crop_face(face, (0, 0, 48, 48), 48), face)


def test_crop_is_square_centred_and_pads_at_the_border():
    frame = np.zeros((100, 100), np.uint8)
    frame[40:60, 40:60] = 255  # a bright square "face"
    crop = crop_face(frame, (40, 40, 20, 20), 48)
    assert crop.shape == (48, 48) and crop[24, 24] == 255 and crop.mean() > 200
    edge = crop_face(frame, (90, 90, 20, 20), 48)  # half outside the frame: no error, replicated border
    assert edge.shape == (48, 48)


def test_alignment_levels_the_eyes():
    assert eye_angle(np.array([[10, 10], [30, 10], [0, 0], [0, 0], [0, 0]])) == pytest.approx(0)
    assert eye_angle(np.array([[10, 10], [30, 30], [0, 0], [0, 0], [0, 0]])) == pytest.approx(45)
    frame = np.zeros((200, 200), np.uint8)
    frame[95:105, 60:140] = 255  # a horizontal bar...
    rotated = crop_face(frame, (50, 50, 100, 100), 48, angle=0)
    assert rotated[24, 10:38].min() == 255  # ...stays horizontal at angle 0
    tilted = crop_face(frame, (50, 50, 100, 100), 48, angle=30)
    assert tilted[24, 10:38].min() < 255  # ...and is rotated otherwise


def test_resize_faces_accepts_any_size_and_layout():
    faces = [np.zeros((48, 48), np.uint8), np.zeros((200, 160, 3), np.uint8), np.zeros((30, 30, 4), np.uint8)]
    assert resize_faces(faces, 48).shape == (3, 48, 48)


def test_normalize_uses_fer_statistics():
    x = normalize(torch.full((2, 48, 48), 255, dtype=torch.uint8))
    assert x.shape == (2, 1, 48, 48) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx((1 - FER_MEAN) / FER_STD)


def test_training_and_inference_give_the_same_probabilities(tiny_checkpoint, tmp_path):
    """Training's evaluation path on the checkpoint's model, and EmotionRecognizer.classify on
    the same faces: through ONNX Runtime (the CPU default) and OpenCV on the ONNX export (float32), and through
    torch (BatchNorm folded) in the precision torch picks for this CPU (bfloat16 where native)."""
    from training.export import export_onnx

    faces = np.random.default_rng(2).integers(0, 255, (5, 48, 48), dtype=np.uint8)
    ckpt = load_checkpoint(tiny_checkpoint)
    training = softmax(predict_logits(ckpt.model, faces, ckpt.mean, ckpt.std, torch.device("cpu")))
    onnx = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    for backend in ("onnxruntime", "opencv"):
        cpu = EmotionRecognizer(onnx, device="cpu", detector="haar", backend=backend)
        assert (cpu.backend, cpu.precision) == (backend, "float32")
        np.testing.assert_allclose(cpu.classify(list(faces)), training, atol=1e-5)
    app = EmotionRecognizer(tiny_checkpoint, device="cpu", detector="haar", backend="torch")
    assert app.precision == str(inference_dtype(torch.device("cpu"))).removeprefix("torch.")
    np.testing.assert_allclose(app.classify(list(faces)), training, atol=0.02)


@pytest.mark.parametrize("box", [(300, 200, 60, 60), (-20, -10, 70, 70), (600, 440, 80, 80)])
def test_crop_of_the_neighbourhood_equals_a_crop_of_the_whole_frame(box):
    """crop_face cuts the face's surroundings before warping; at the frame's edges too, the
    pixels must be those of warping the whole frame (small faces: no shrink step)."""
    frame = np.random.default_rng(0).integers(0, 255, (480, 640), dtype=np.uint8)
    x, y, w, h = box
    side, centre = max(w, h), (x + w / 2.0, y + h / 2.0)
    m = cv2.getRotationMatrix2D(centre, 25.0, 48 / side)
    m[:, 2] += (24 - centre[0], 24 - centre[1])
    whole = cv2.warpAffine(frame, m, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(crop_face(frame, box, 48, angle=25.0), whole)
