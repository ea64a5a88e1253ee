"""talkinghead: few-shot neural talking heads (after Zakharov et al., ICCV 2019).

Layers, each in its own sub-package: ``io`` (video/image files) → ``faces`` (detection, landmarks,
crops, sketches) → ``data`` (dataset preparation and reading) → models → losses → training →
inference → evaluation → interfaces (``cli``, ``api``).
"""

from talkinghead.errors import InputError, TalkingHeadError

__version__ = "0.1.0"

__all__ = ["InputError", "TalkingHeadError", "__version__"]
