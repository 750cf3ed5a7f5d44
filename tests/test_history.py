"""MoodHistory: runs merge into segments, gaps stay gaps, old runs go, and the shares add up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from emotion.history import MoodHistory, MoodSegment


def feed(history: MoodHistory, labels: list[str | None], start: float = 0.0, step: float = 0.1) -> float:
    for i, label in enumerate(labels):
        history.add(start + i * step, label)
    return start + (len(labels) - 1) * step


def test_frames_of_one_mood_merge_into_one_segment():
    history = MoodHistory()
    feed(history, ["happy"] * 11)
    assert history.segments() == (MoodSegment("happy", 0.0, pytest.approx(1.0)),)


def test_a_change_of_mood_starts_a_segment_where_the_old_one_ends():
    history = MoodHistory()
    feed(history, ["happy"] * 5 + ["sad"] * 5)
    happy, sad = history.segments()
    assert (happy.label, happy.start, sad.label, sad.end) == ("happy", 0.0, "sad", pytest.approx(0.9))
    assert happy.end == sad.start == pytest.approx(0.5)  # no gap, no overlap
    assert history.seconds == {"happy": pytest.approx(0.5), "sad": pytest.approx(0.4)}


def test_no_face_and_long_gaps_leave_holes():
    history = MoodHistory(max_gap=1.0)
    history.add(0.0, "happy")
    history.add(0.5, "happy")
    history.add(0.6, None)  # the face left: happy held until this frame
    history.add(1.0, "sad")
    history.add(1.5, "sad")
    history.add(10.0, "sad")  # paused for 8.5 s: not counted as sad
    history.add(10.2, "sad")
    assert [(s.label, s.start, s.end) for s in history.segments()] == [
        ("happy", 0.0, 0.6), ("sad", 1.0, 1.5), ("sad", 10.0, 10.2)]
    assert history.seconds == {"happy": pytest.approx(0.6), "sad": pytest.approx(0.7)}


def test_share_covers_all_time_seen_even_after_the_segments_are_dropped():
    history = MoodHistory(span=10.0)
    end = feed(history, ["happy"] * 301, step=0.1)  # 30 s happy
    feed(history, ["neutral"] * 100, start=end + 0.1, step=0.1)  # then 10 s neutral
    assert history.share() == {"happy": pytest.approx(0.75, abs=0.01), "neutral": pytest.approx(0.25, abs=0.01)}
    assert sum(history.share().values()) == pytest.approx(1.0)
    oldest = history.segments()[0]
    assert oldest.label == "happy" and oldest.end >= end  # the happy run still reaches into the last 10 s


def test_old_segments_and_marks_are_dropped_after_span():
    history = MoodHistory(span=60.0)
    history.add(0.0, "angry")
    history.add(1.0, "angry")
    history.add(1.1, "happy")
    history.mark(1.1, "happy")
    history.add(100.0, "happy")  # a gap: the happy run before it ended at 1.1
    history.add(100.5, "happy")
    assert [s.label for s in history.segments()] == ["happy"] and history.segments()[0].start == 100.0
    assert history.marks() == ()


def test_segments_since_leaves_out_what_ended_before():
    history = MoodHistory()
    feed(history, ["happy"] * 10 + ["sad"] * 10)
    assert [s.label for s in history.segments(since=1.5)] == ["sad"]
    history.mark(1.95, "sad")
    assert [m.time for m in history.marks(since=1.9)] == [1.95] and history.marks(since=2.0) == ()


def test_memory_is_bounded_however_often_the_mood_flickers():
    history = MoodHistory(span=1e9, max_segments=100)
    feed(history, ["happy", "sad"] * 5000, step=0.01)
    assert len(history.segments()) <= 101


def test_a_single_photo_has_no_duration():
    history = MoodHistory()
    history.add(0.0, "happy")
    assert history.share() == {} and history.segments()[0].duration == 0


def test_time_must_not_go_back():
    history = MoodHistory()
    history.add(5.0, "happy")
    with pytest.raises(ValueError, match="went back"):
        history.add(4.0, "happy")


def test_the_headless_summary_gives_each_moods_share_of_the_stream(face_video):
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--source", str(face_video), "--benchmark",
                             "--detector", "haar"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    share = summary["mood_share"]
    assert share["happy"] > 0.9  # the astronaut smiles in every frame
    assert sum(share.values()) == pytest.approx(1.0, abs=0.01)
