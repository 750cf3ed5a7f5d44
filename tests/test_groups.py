"""Eight real faces moving in an HD frame: every track stays on its face, and the mood follows the main face."""

from __future__ import annotations

from collections import defaultdict

import pytest
from clips import GroupScene, real_portraits

from emotion.detection import iou
from emotion.pipeline import EmotionPipeline
from emotion.recognizer import EmotionRecognizer
from emotion.results import main_face_score


@pytest.fixture(scope="module")
def group_run():
    """The 8-face 1920x1080 benchmark scene (tests/clips.py), 150 frames (5 s: every face swings through
    its path at least once, neighbours coming within touching distance), through the app's own pipeline."""
    scene, portraits = GroupScene((1920, 1080), 8), real_portraits()
    pipeline = EmotionPipeline(EmotionRecognizer(device="cpu"))  # the shipped YuNet, as the app runs it
    return [(scene.face_boxes(i, portraits), pipeline.process(scene.frame(i, portraits), i / 30)) for i in range(150)]


def test_tracks_never_swap_faces_when_eight_faces_move(group_run):
    faces_of_track: dict[int, set[int]] = defaultdict(set)
    found = 0
    for truth, analysis in group_run:
        owners = []
        for face in analysis.faces:
            overlap, owner = max((iou(face.box, box), k) for k, box in enumerate(truth))
            assert overlap > 0.4, f"frame {analysis.index}: a box on no face ({face.box})"
            faces_of_track[face.track_id].add(owner)
            owners.append(owner)
        assert len(owners) == len(set(owners)), f"frame {analysis.index}: two tracks on one face"
        found += len(owners)
    swapped = {track: faces for track, faces in faces_of_track.items() if len(faces) > 1}
    assert not swapped, f"tracks that moved to another face: {swapped}"
    # Of the 1,200 face-frames: the old per-face search found 871. The mirrored, turned cameraman
    # (face 5) is beyond YuNet's whole-frame search at 480 px in 18 of 30 frames, so once lost he
    # stays lost for a while; every other face is found in nearly every frame.
    assert found >= 0.8 * 8 * len(group_run)


def test_the_mood_follows_the_largest_most_central_face(group_run):
    for _truth, analysis in group_run:
        main = max(analysis.faces, key=lambda face: main_face_score(face.box, (1920, 1080)))
        assert analysis.mood is not None and analysis.mood.track_id == main.track_id
