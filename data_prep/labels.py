"""Expression label sets of the datasets (codes are the class indices used for training)."""

from __future__ import annotations

#: CK+ Emotion/*_emotion.txt codes (also used by synthfaces): 8 classes, neutral = first frames.
CKPLUS_EXPRESSIONS: dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happy",
    6: "sadness",
    7: "surprise",
}
#: Oulu-CASIA folder names -> canonical names (shared with CK+ so pairs code is dataset-agnostic).
OULU_FOLDERS: dict[str, str] = {
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happiness": "happy",
    "sadness": "sadness",
    "surprise": "surprise",
}
#: Oulu-CASIA, 6 classes (the authors' default; no neutral class: first frames get code -1).
OULU_EXPRESSIONS_6: dict[int, str] = {0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "sadness", 5: "surprise"}
#: Oulu-CASIA, 7 classes (neutral first frames as class 0), as in the authors' pair-generation script.
OULU_EXPRESSIONS_7: dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "disgust",
    3: "fear",
    4: "happy",
    5: "sadness",
    6: "surprise",
}
#: The "required" expressions of the authors' verification pairs (Happiness, Surprise).
REQUIRED_EXPRESSIONS: tuple[str, ...] = ("happy", "surprise")
#: Code used in the manifest for frames without an expression class (Oulu 6-class neutral frames).
NO_EXPRESSION = -1
