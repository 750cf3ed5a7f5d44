"""The pipeline hands out frozen snapshots; photos stand alone; scene cuts end tracks; stats stay bounded."""

from __future__ import annotations

import ast
import dataclasses
import random
import sys
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
import pytest
from clips import face_scene

from emotion import preprocess
from emotion.errors import MoodtunesError
from emotion.pipeline import EmotionPipeline, FrameAnalysis, LatencyStats, TrackedFace
from emotion.recognizer import EmotionRecognizer
from emotion.results import FaceResult
from emotion.smoothing import Mood


@pytest.fixture(scope="module")
def pipeline_factory():
    recognizer = EmotionRecognizer(device="cpu", detector="haar")
    return lambda: EmotionPipeline(recognizer)


def moving_face(astronaut_bgr, i: int, background: int = 40) -> np.ndarray:
    frame = face_scene(astronaut_bgr, dx=int(140 + 10 * i))
    frame[frame == 40] = background  # the studio's backdrop
    return frame


def assert_frozen(value, path="analysis"):
    """Nothing reachable from a snapshot can be changed in place."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return
    if isinstance(value, np.ndarray):
        assert not value.flags.writeable, f"{path} is a writeable array"
        return
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            assert_frozen(item, f"{path}[{i}]")
        return
    if isinstance(value, MappingProxyType):
        for key, item in value.items():
            assert_frozen(item, f"{path}[{key!r}]")
        return
    assert dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen, \
        f"{path} is a {type(value).__name__}, which can change after the hand-over"
    for f in dataclasses.fields(value):
        assert_frozen(getattr(value, f.name), f"{path}.{f.name}")


def test_analyses_are_frozen_and_later_frames_change_nothing_in_them(pipeline_factory, astronaut_bgr):
    pipeline = pipeline_factory()
    first = pipeline.process(moving_face(astronaut_bgr, 0), 0.0)
    assert isinstance(first, FrameAnalysis) and first.faces and isinstance(first.faces[0], TrackedFace)
    assert_frozen(first)
    before = first.to_dict()
    for i in range(1, 12):  # the tracker keeps updating the same track meanwhile
        later = pipeline.process(moving_face(astronaut_bgr, i), i / 15)
    assert later.faces[0].track_id == first.faces[0].track_id
    assert first.to_dict() == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.faces[0].label = "sad"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.faces[0].probabilities["happy"] = 0.0  # type: ignore[index]
    # The snapshot's label and confidence come from the same frame as its box.
    face = later.faces[0]
    assert face.label == max(face.probabilities, key=face.probabilities.get)
    assert face.confidence == pytest.approx(face.probabilities[face.label])


def test_a_writeable_frame_from_a_caller_is_copied_not_frozen_in_place(pipeline_factory, astronaut_bgr):
    frame = moving_face(astronaut_bgr, 0)
    analysis = pipeline_factory().process(frame, 0.0)
    assert frame.flags.writeable and not analysis.frame.flags.writeable
    frame[:] = 0
    assert analysis.frame.any()


def test_a_scene_cut_starts_new_tracks_and_ids_are_never_reused(pipeline_factory, astronaut_bgr):
    pipeline = pipeline_factory()
    ids_before = {f.track_id for i in range(10) for f in pipeline.process(moving_face(astronaut_bgr, i), i / 15).faces}
    assert len(ids_before) == 1  # a moving head is not a cut
    # Another scene: a bright room, someone (here the same photo) where the face just was.
    after = [pipeline.process(moving_face(astronaut_bgr, 9, background=230), (10 + i) / 15) for i in range(5)]
    ids_after = {f.track_id for a in after for f in a.faces}
    assert len(ids_after) == 1 and ids_after.isdisjoint(ids_before)
    assert min(ids_after) > max(ids_before)


def test_each_photo_stands_alone(pipeline_factory, astronaut_bgr):
    pipeline = pipeline_factory()
    smiling = face_scene(astronaut_bgr)
    other = cv2.convertScaleAbs(cv2.flip(smiling, 1), alpha=0.6)  # another picture, same place
    first = pipeline.process(smiling, 0.0, independent=True, photo="a.jpg")
    second = pipeline.process(other, 1.0, independent=True, photo="b.jpg")
    assert first.faces and second.faces
    assert second.faces[0].track_id != first.faces[0].track_id
    # No history: the mood and the smoothed face are exactly this photo's own prediction.
    raw = second.faces[0].face.probabilities
    for name, p in raw.items():
        assert second.mood.probabilities[name] == pytest.approx(p, abs=1e-9)
        assert second.faces[0].probabilities[name] == pytest.approx(p, abs=1e-9)
    assert second.to_dict()["photo"] == "b.jpg"


def two_faces(astronaut_bgr) -> np.ndarray:
    half = face_scene(astronaut_bgr, dx=10, size=(320, 480), face_side=300)
    return np.hstack([half, half])


def test_one_image_reads_as_the_first_frame_of_a_video(pipeline_factory, astronaut_bgr):
    frame = two_faces(astronaut_bgr)
    pipeline = pipeline_factory()
    video = [face.face for face in pipeline.process(frame, 0.0).faces]
    photo = pipeline.recognizer.analyze(frame)
    assert len(photo) == 2
    assert [f.to_dict() for f in photo] == [f.to_dict() for f in video]
    assert all(np.array_equal(a.logits, b.logits) for a, b in zip(photo, video, strict=True))


def test_a_frame_is_checked_once_however_many_faces(monkeypatch, pipeline_factory, astronaut_bgr):
    """Validated where it comes in, not again by the detector, the crops and each face."""
    original = preprocess.check_image
    checked = []

    def counting(image):
        checked.append(image.shape)
        return original(image)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("emotion.") and getattr(module, "check_image", None) is original:
            monkeypatch.setattr(module, "check_image", counting)
    frame = two_faces(astronaut_bgr)
    pipeline = pipeline_factory()
    assert len(pipeline.process(frame, 0.0).faces) == 2 and checked == [frame.shape]
    checked.clear()
    assert len(pipeline.recognizer.analyze(frame)) == 2 and checked == [frame.shape]
    with pytest.raises(MoodtunesError, match="Unsupported image type float32"):
        pipeline.process(frame.astype(np.float32), 1.0)


def test_the_engine_imports_in_one_direction():
    """No circle among emotion's modules, counting imports inside functions (which can hide one) and leaving
    out only those for annotations (under TYPE_CHECKING)."""
    package = Path(preprocess.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        imports, todo = set(), [ast.parse(path.read_text(encoding="utf-8"))]
        while todo:
            node = todo.pop()
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                todo.extend(node.orelse)
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("emotion."):
                imports.add(node.module.split(".")[1])
            todo.extend(ast.iter_child_nodes(node))
        graph[path.stem] = imports & {p.stem for p in package.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail[trail.index(module):], module))
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*trail, module))
            done.add(module)

    for module in graph:
        visit(module, ())
    assert graph["results"] <= {"classes", "preprocess"} and "recognizer" not in graph["calibration"]


def test_face_results_and_moods_are_read_only():
    result = FaceResult((1, 2, 3, 4), np.zeros((5, 2)), {"happy": 1.0}, "happy", 1.0)
    with pytest.raises(TypeError):
        result.probabilities["happy"] = 0.5  # type: ignore[index]
    with pytest.raises(ValueError):
        result.landmarks[0, 0] = 3
    mood = Mood("happy", 0.9, MappingProxyType({"happy": 0.9}), 0.0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mood.label = "sad"  # type: ignore[misc]


def test_latency_statistics_take_bounded_memory_and_stay_accurate():
    stats = LatencyStats(capacity=2_000)
    rng = random.Random(5)
    values = [rng.uniform(0, 10) for _ in range(200_000)]  # hours of frames
    for v in values:
        stats.add({"total_ms": v})
    assert len(stats.samples["total_ms"]) == 2_000
    summary = stats.summary()["total"]
    assert summary["p50"] == pytest.approx(5.0, abs=0.4) and summary["p95"] == pytest.approx(9.5, abs=0.3)
    assert stats.total("total_ms") == pytest.approx(sum(values))
    short = LatencyStats()
    for v in (1.0, 2.0, 3.0):
        short.add({"detect_ms": v})
    assert short.summary()["detect"]["p50"] == 2.0  # exact while under capacity
