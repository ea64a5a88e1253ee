"""Does ``speak``'s rendered mouth open as far as its landmark track says? Prints figures; asserts nothing.

``speak`` turns speech into a landmark track (the speech model's lips and jaw on the photo's face) and renders it.
A photo with closed lips has no mouth interior to move, so where the track opens the mouth the render fills the
opening with a donor's (:func:`talkinghead.inference.mouth.example_mouth`), or, with ``--no-mouth-interior``,
stretches the lips over it. Either way, what a viewer sees is the rendered opening, not the track's.

For each photo, one sentence (eSpeak NG) is said with the shipped models, with the mouth interior off and on; the
written frames are tracked again (dlib, each frame on its own) and, per frame, the mouth opening (inner-lip
distance / inter-ocular distance) of the output is set against the track's: its 10th-90th percentile, Pearson r
and the slope of the output's opening on the track's (1: the rendered mouth opens as far as the track asks).

    .venv/bin/python benchmarks/speak_mouth.py [--portraits NAME ...] [--text "..."]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from gaze_follow import SOURCES, source_path

from talkinghead.evaluation.metrics import detect_face_landmarks
from talkinghead.faces.measures import mouth_opening
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.io import read_video
from talkinghead.speech.drive import SpeechDriver, load_speech, speak

TEXT = "Hello! I am Mona Lisa. My mouth was shut for five hundred years. Now, who would have thought, I can talk."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portraits", nargs="+", default=SOURCES)
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    anim = Animator(args.model, device="cpu")
    scores: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        speech = load_speech(None, args.text, Path(tmp))
        for name in args.portraits:
            anim.set_source([source_path(name)], progress=False)
            track = SpeechDriver(seed=0).track(anim.sources[0].landmarks, speech.features, speech.fps,
                                               speech.phonemes)
            asked = mouth_opening(track.landmarks)
            line = [f"{Path(name).name[:22]:22s} photo {float(mouth_opening(anim.sources[0].landmarks)):.3f}, track "
                    f"{np.percentile(asked, 10):.3f}-{np.percentile(asked, 90):.3f}"]
            for on in (False, True):
                out = Path(tmp) / "out.mp4"
                speak(anim, out, speech, SpeechDriver(seed=0),
                      AnimateOptions(progress=False, watermark=False, credentials=False, driver_mouth=on))
                frames, _ = read_video(out)
                got = np.array([np.nan if (lmk := detect_face_landmarks(f)) is None else float(mouth_opening(lmk))
                                for f in frames])
                n = min(len(got), len(asked))
                ok = np.isfinite(got[:n])
                a, g = asked[:n][ok], got[:n][ok]
                r = float(np.corrcoef(a, g)[0, 1])
                slope = float(np.polyfit(a, g, 1)[0])
                scores[on].append((r, slope))
                line.append(f"{'on' if on else 'off'}: output {np.percentile(g, 10):.3f}-{np.percentile(g, 90):.3f}, "
                            f"r {r:.2f}, slope {slope:.2f} ({int(ok.sum())} frames)")
            print(" | ".join(line), flush=True)
    for on in (False, True):
        s = np.array(scores[on])
        print(f"mouth interior {'on ' if on else 'off'}: mean r {s[:, 0].mean():.3f}, mean slope {s[:, 1].mean():.3f} "
              f"over {len(s)} photos")


if __name__ == "__main__":
    main()
