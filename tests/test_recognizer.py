"""EmotionRecognizer on real faces and on everything a frame source can throw at it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from clips import face_scene
from conftest import FER2013_CSV, FERPLUS_ZIP, SHIPPED_CHECKPOINT, YUNET_TEST_MODEL, needs

from emotion.classes import EMOTIONS
from emotion.errors import CheckpointError, MoodtunesError
from emotion.recognizer import EmotionRecognizer


@pytest.fixture(scope="module")
def recognizer():
    """The shipped model with the Haar detector (no download needed)."""
    return EmotionRecognizer(device="cpu", detector="haar")


def test_default_checkpoint_is_the_shipped_ferplus_model(recognizer):
    # On the CPU: its int8 twin, run by ONNX Runtime (torch is not even imported); OpenCV's DNN
    # module, slower on int8 graphs, opens the float32 twin.
    assert recognizer.checkpoint_path == SHIPPED_CHECKPOINT.with_suffix(".int8.onnx")
    assert (recognizer.backend, recognizer.device, recognizer.precision) == ("onnxruntime", "cpu", "int8")
    assert recognizer.classifier.metadata["dataset"] == "ferplus"
    opencv = EmotionRecognizer(device="cpu", detector="haar", backend="opencv")
    assert opencv.checkpoint_path == SHIPPED_CHECKPOINT.with_suffix(".onnx") and opencv.precision == "float32"
    assert opencv.classifier.model_id == recognizer.classifier.model_id  # one model: calibrations carry over
    torch_twin = EmotionRecognizer(device="cpu", detector="haar", backend="torch")
    assert torch_twin.checkpoint_path == SHIPPED_CHECKPOINT and torch_twin.backend == "torch"


def test_a_shipped_model_is_chosen_by_name_from_any_folder(tmp_path, monkeypatch):
    """After `pip install .` the files live in site-packages, so --checkpoint takes the shipped names."""
    monkeypatch.chdir(tmp_path)
    fer2013 = SHIPPED_CHECKPOINT.with_name("emotion_fer2013.pt")
    chosen = EmotionRecognizer("emotion_fer2013", device="cpu", detector="haar")
    assert chosen.checkpoint_path == fer2013.with_suffix(".int8.onnx") and chosen.precision == "int8"
    assert chosen.classifier.metadata["dataset"] == "fer2013"
    on_opencv = EmotionRecognizer("emotion_fer2013", device="cpu", detector="haar", backend="opencv")
    assert on_opencv.checkpoint_path == fer2013.with_suffix(".onnx")
    on_torch = EmotionRecognizer("emotion_fer2013", device="cpu", detector="haar", backend="torch")
    assert on_torch.checkpoint_path == fer2013
    with pytest.raises(CheckpointError, match="emotion_ferplus, emotion_fer2013"):
        EmotionRecognizer("emotion_fer2014", device="cpu", detector="haar", backend="opencv")


def test_astronaut_is_one_happy_face(recognizer, astronaut_bgr):
    (result,) = recognizer.analyze(face_scene(astronaut_bgr))
    assert set(result.probabilities) == set(EMOTIONS)
    assert sum(result.probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert result.label == "happy" and result.confidence == max(result.probabilities.values())
    assert result.landmarks is None  # Haar has none


@needs(YUNET_TEST_MODEL)
def test_astronaut_with_yunet_and_alignment(astronaut_bgr):
    recognizer = EmotionRecognizer(device="cpu", face_model=YUNET_TEST_MODEL)
    assert recognizer.detector.name == "YuNet"
    tilted = cv2.warpAffine(face_scene(astronaut_bgr), cv2.getRotationMatrix2D((320, 240), 20, 1.0), (640, 480))
    (result,) = recognizer.analyze(tilted)
    assert result.label == "happy" and result.landmarks.shape == (5, 2)


def test_gray_and_bgra_frames_give_the_same_faces(recognizer, astronaut_bgr):
    scene = face_scene(astronaut_bgr)
    boxes = [r.box for r in recognizer.analyze(scene)]
    assert [r.box for r in recognizer.analyze(cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY))] == boxes
    assert [r.box for r in recognizer.analyze(cv2.cvtColor(scene, cv2.COLOR_BGR2BGRA))] == boxes


def test_no_face_and_two_faces(recognizer, astronaut_bgr):
    assert recognizer.analyze(np.full((480, 640, 3), 90, np.uint8)) == []
    half = face_scene(astronaut_bgr, dx=10, size=(320, 480), face_side=300)
    results = recognizer.analyze(np.hstack([half, half]))
    assert len(results) == 2 and all(r.label == "happy" for r in results)


@needs(YUNET_TEST_MODEL)
def test_many_small_faces_in_one_batch(astronaut_bgr):
    recognizer = EmotionRecognizer(device="cpu", face_model=YUNET_TEST_MODEL)
    tile = face_scene(astronaut_bgr, dx=40, size=(320, 240), face_side=240)
    grid = np.vstack([np.hstack([tile, tile]), np.hstack([tile, tile])])
    results = recognizer.analyze(grid)
    assert len(results) == 4
    assert len({r.box for r in results}) == 4


def test_opencv_refuses_an_int8_model_in_one_line_naming_onnxruntime(tmp_path):
    int8 = SHIPPED_CHECKPOINT.with_suffix(".int8.onnx")
    with pytest.raises(CheckpointError) as refused:
        EmotionRecognizer(int8, device="cpu", detector="haar", backend="opencv")
    message = str(refused.value)
    assert "\n" not in message and "--backend onnxruntime" in message
    assert f"the float model {SHIPPED_CHECKPOINT.with_suffix('.onnx')}" in message
    alone = tmp_path / int8.name  # no float twin beside it: only ONNX Runtime is named
    alone.write_bytes(int8.read_bytes())
    with pytest.raises(CheckpointError, match=r"--backend onnxruntime\.$"):
        EmotionRecognizer(alone, device="cpu", detector="haar", backend="opencv")
    assert EmotionRecognizer(alone, device="cpu", detector="haar", backend="onnxruntime").precision == "int8"


@pytest.mark.parametrize("frame", [np.zeros((0, 0, 3), np.uint8), np.zeros((480, 640, 3), np.float32)])
def test_bad_frames_raise_a_clear_error(recognizer, frame):
    with pytest.raises(MoodtunesError):
        recognizer.analyze(frame)


def test_classify_of_nothing_is_empty(recognizer):
    assert recognizer.classify([]).shape == (0, 7)


def test_both_cpu_runtimes_give_the_same_logits_and_labels():
    faces = list(np.random.default_rng(4).integers(0, 255, (64, 48, 48), dtype=np.uint8))
    float_model = SHIPPED_CHECKPOINT.with_suffix(".onnx")  # the same file on both (by default ORT's is int8)
    runtime = EmotionRecognizer(float_model, device="cpu", detector="haar", backend="onnxruntime")
    opencv = EmotionRecognizer(float_model, device="cpu", detector="haar", backend="opencv")
    assert (runtime.backend, opencv.backend) == ("onnxruntime", "opencv")
    assert runtime.model_id == opencv.model_id and runtime.decision == opencv.decision
    np.testing.assert_allclose(runtime.logits(faces), opencv.logits(faces), atol=1e-4)
    np.testing.assert_array_equal(runtime.classify(faces).argmax(1), opencv.classify(faces).argmax(1))


def test_onnx_runtime_uses_opencvs_thread_count():
    """One setting (main.configure_process, MOODTUNES_THREADS) sizes both pools."""
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        session = EmotionRecognizer(device="cpu", detector="haar").classifier._session
        assert session.get_session_options().intra_op_num_threads == 1
    finally:
        cv2.setNumThreads(before)


def test_without_onnx_runtime_the_cpu_falls_back_to_opencv(monkeypatch):
    import emotion.classifier

    monkeypatch.setattr(emotion.classifier, "onnxruntime_installed", lambda: False)
    assert EmotionRecognizer(device="cpu", detector="haar").backend == "opencv"
    with pytest.raises(MoodtunesError, match="pip install onnxruntime"):
        EmotionRecognizer(device="cpu", detector="haar", backend="onnxruntime")


def test_a_file_onnx_runtime_cannot_run_is_one_clear_error(tmp_path):
    """moodtunes metadata around a graph with an operator no runtime knows: refused when opened, naming
    the runtime."""
    from emotion.classifier import read_onnx_metadata

    shipped = SHIPPED_CHECKPOINT.with_suffix(".onnx").read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(shipped.replace(b'"\x04Conv', b'"\x04Cxnv', 1))  # NodeProto.op_type, same length
    assert broken.read_bytes() != shipped
    assert read_onnx_metadata(broken)["format"] == "moodtunes-emotion-onnx"
    with pytest.raises(CheckpointError, match="cannot be run by ONNX Runtime"):
        EmotionRecognizer(broken, device="cpu", detector="haar", backend="onnxruntime")


def test_unknown_device_is_a_clear_error():
    with pytest.raises(MoodtunesError, match="Unknown device"):
        EmotionRecognizer(device="tpu")


@needs(FERPLUS_ZIP)
def test_shipped_model_on_ferplus_validation_faces(recognizer):
    """FER+ faces as the app sees them: classify() on the 48x48 crops (validation split:
    the test split is evaluated once, for the model card, not in every test run)."""
    from training.datasets import load_dataset

    data = load_dataset("ferplus", FERPLUS_ZIP, "val").labelled()
    probs = recognizer.classify(list(data.images[:600]))
    accuracy = (probs.argmax(1) == data.labels[:600]).mean()
    assert accuracy > 0.80


@needs(FER2013_CSV)
def test_shipped_fer2013_model_on_publictest_faces():
    """The FER2013-protocol model on PublicTest, its selection split (PrivateTest is for the card)."""
    from training.datasets import load_dataset

    recognizer = EmotionRecognizer(SHIPPED_CHECKPOINT.with_name("emotion_fer2013.pt"), device="cpu", detector="haar")
    assert recognizer.classifier.metadata["dataset"] == "fer2013"
    data = load_dataset("fer2013", FER2013_CSV, "val")
    probs = recognizer.classify(list(data.images[:600]))
    assert (probs.argmax(1) == data.labels[:600]).mean() > 0.65


@pytest.mark.parametrize("name", ["emotion_ferplus.pt", "emotion_fer2013.pt"])
def test_shipped_checkpoints_are_small_and_documented(name):
    path = SHIPPED_CHECKPOINT.with_name(name)
    assert path.stat().st_size <= 20 * 2**20
    assert name in (path.parent / "MODEL_CARD.md").read_text()
