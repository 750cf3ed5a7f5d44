"""The seven emotion classes: their order, display colours and place on the circumplex.

The order is the FER2013 label order (0 = angry ... 6 = neutral). Checkpoints store the
class names they were trained with, and loading checks them against this tuple.
"""

from __future__ import annotations

from dataclasses import dataclass

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)


@dataclass(frozen=True)
class EmotionStyle:
    colour: str  # "#rrggbb", used by the overlay and the GUI
    valence: float  # -1 (unpleasant) .. +1 (pleasant)
    arousal: float  # -1 (calm) .. +1 (excited)


# Valence/arousal: each emotion's place on Russell's circumplex, -1..+1. The one table of them:
# the playlist's profiles take their music's place from here (playlist/profiles.py; a user's
# profiles.toml may move it) and the API's /emotions shows it. Placements follow Russell 1980
# ("A circumplex model of affect", J. Pers. Soc. Psychol. 39(6)), the perceived-emotion ratings of
# film music in Eerola & Vuoskoski 2011 ("A comparison of the discrete and dimensional models of
# emotion in music", Psychology of Music 39(1)) and the mood-to-genre associations of Hu & Downie
# 2007 ("Exploring mood metadata: relationships with genre, artist and usage metadata", ISMIR
# 2007), rescaled to [-1, 1]. Disgust is not on Russell's original circle; it sits between anger
# and sadness (unpleasant, moderately aroused) as in Posner, Russell & Peterson 2005. Neutral sits
# a little pleasant and calm rather than at the centre: the relaxed face of someone at work, whose
# music should not pull them anywhere.
STYLES: dict[str, EmotionStyle] = {
    "angry": EmotionStyle("#e53935", valence=-0.55, arousal=0.80),
    "disgust": EmotionStyle("#7cb342", valence=-0.65, arousal=0.35),
    "fear": EmotionStyle("#8e24aa", valence=-0.60, arousal=0.65),
    "happy": EmotionStyle("#fdd835", valence=0.85, arousal=0.55),
    "sad": EmotionStyle("#1e88e5", valence=-0.70, arousal=-0.50),
    "surprise": EmotionStyle("#fb8c00", valence=0.35, arousal=0.85),
    "neutral": EmotionStyle("#9e9e9e", valence=0.10, arousal=-0.25),
}
