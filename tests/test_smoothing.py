"""Tracking and smoothing: frame-rate independent, no flicker, the main face wins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emotion.classes import EMOTIONS
from emotion.results import FaceResult, main_face_score
from emotion.smoothing import ExponentialSmoother, FaceTracker, MoodTracker, iou


def face(box, label="neutral", p=0.9) -> FaceResult:
    probs = {name: (1 - p) / (len(EMOTIONS) - 1) for name in EMOTIONS}
    probs[label] = p
    return FaceResult(box=box, landmarks=None, probabilities=probs, label=label, confidence=p)


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


@pytest.mark.parametrize("fps", [5, 30, 120])
def test_exponential_filter_depends_on_time_not_frame_rate(fps):
    smoother = ExponentialSmoother(tau=0.5)
    smoother.update(np.array([0.0]), 0.0)
    t = 0.0
    for _ in range(fps):  # one second of frames stepping the input to 1
        t += 1 / fps
        value = smoother.update(np.array([1.0]), t)
    assert value[0] == pytest.approx(1 - math.exp(-1 / 0.5), abs=1e-9)


def test_tracker_keeps_identity_while_a_face_moves_and_survives_a_missed_frame():
    tracker = FaceTracker(max_missing=0.5)
    (a,) = tracker.update([face((100, 100, 80, 80))], 0.0)
    (b,) = tracker.update([face((110, 104, 80, 80))], 0.1)
    assert a.id == b.id
    assert tracker.update([], 0.2) == []
    (c,) = tracker.update([face((115, 104, 80, 80))], 0.3)
    assert c.id == a.id
    (d,) = tracker.update([face((115, 104, 80, 80))], 1.0)  # gone longer than max_missing: a new track
    assert d.id != a.id


def test_tracker_separates_two_faces():
    tracker = FaceTracker()
    left, right = tracker.update([face((0, 0, 50, 50), "happy"), face((300, 0, 50, 50), "sad")], 0.0)
    right2, left2 = tracker.update([face((305, 0, 50, 50), "sad"), face((3, 0, 50, 50), "happy")], 0.1)
    assert (left.id, right.id) == (left2.id, right2.id)
    assert left2.label == "happy" and right2.label == "sad"


def run_mood(labels_by_time, fps=30, tracker=None, mood=None):
    tracker, mood = tracker or FaceTracker(), mood or MoodTracker()
    result = None
    for i, label in enumerate(labels_by_time):
        t = i / fps
        faces = [face((200, 150, 200, 200), label)] if label else []
        result = mood.update(tracker.update(faces, t), t, (640, 480))
    return result


def test_a_single_odd_frame_does_not_change_the_mood():
    labels = ["happy"] * 90 + ["angry"] + ["happy"] * 5
    assert run_mood(labels).label == "happy"


def test_a_lasting_change_takes_over_within_a_few_seconds():
    mood = run_mood(["happy"] * 90 + ["sad"] * 30)  # 1 s of sadness: not yet
    assert mood.label == "happy"
    mood = run_mood(["happy"] * 90 + ["sad"] * 120)  # 4 s: yes
    assert mood.label == "sad" and mood.held_for(210 / 30) < 4


def test_mood_reports_how_long_it_held_and_clears_without_faces():
    tracker, tracker_mood = FaceTracker(), MoodTracker(window=3.0)
    mood = run_mood(["surprise"] * 60, tracker=tracker, mood=tracker_mood)
    assert mood.label == "surprise" and mood.held_for(59 / 30) == pytest.approx(59 / 30)
    assert run_mood([None] * 30, tracker=tracker, mood=tracker_mood) is not None  # 1 s without a face: kept
    assert tracker_mood.update([], 10.0, (640, 480)) is None  # long gone: cleared


def test_main_face_is_the_largest_most_central():
    assert main_face_score((270, 190, 100, 100), (640, 480)) > main_face_score((0, 0, 100, 100), (640, 480))
    assert main_face_score((0, 0, 200, 200), (640, 480)) > main_face_score((270, 190, 100, 100), (640, 480))
    tracker, mood = FaceTracker(), MoodTracker()
    for i in range(60):
        t = i / 30
        tracks = tracker.update([face((10, 10, 60, 60), "angry"), face((220, 140, 200, 200), "happy")], t)
        result = mood.update(tracks, t, (640, 480))
    assert result.label == "happy"
