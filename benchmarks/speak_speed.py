"""Speed of ``talkinghead speak`` on this machine: seconds of compute per second of output video, by stage.

Stages: text to speech (eSpeak NG), audio decoding and features, the speech model and the head-motion track,
then rendering + encoding + watermark + signing (``Animator.animate``; depends on the renderer model). Model
loading and the source photo's face detection are done once before and not counted.

    python benchmarks/speak_speed.py [--source PHOTO] [--model RENDERER] [--text "..."] [--repeat 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

TEXT = ("Hello! I am a portrait, and now I can talk. The quick brown fox jumps over the lazy dog, "
        "and we measure how long it takes.")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", help="photo (default: the astronaut)")
    ap.add_argument("--model", help="renderer model (default: the shipped one)")
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import torch

    from talkinghead.inference.animate import AnimateOptions, Animator
    from talkinghead.speech.drive import SpeechDriver, load_speech, speak

    anim = Animator(args.model, device="cpu")
    if args.source:
        anim.set_source([args.source], progress=False)
    else:
        from talkinghead.data.examples import astronaut

        anim.set_source([astronaut()], progress=False)
    driver = SpeechDriver()
    print(f"torch threads: {torch.get_num_threads()}; renderer: {args.model or 'shipped'} "
          f"({anim.bundle.config.arch if hasattr(anim.bundle.config, 'arch') else '?'}, "
          f"{anim.resolution}²)")
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.repeat):
            t0 = time.perf_counter()
            speech = load_speech(None, args.text, Path(tmp))
            t1 = time.perf_counter()
            track = driver.track(anim.sources[0].landmarks, speech.features, speech.fps)
            t2 = time.perf_counter()
            res = speak(anim, Path(tmp) / f"out{run}.mp4", speech, driver, AnimateOptions(progress=False))
            t3 = time.perf_counter()
            dur = speech.audio.seconds
            render = res.render.seconds if res.render else float("nan")
            print(f"run {run}: {dur:.1f} s of speech, {res.frames} frames | TTS {speech.tts_seconds:.2f} s, "
                  f"features {t1 - t0 - speech.tts_seconds:.2f} s, speech model + track {t2 - t1:.2f} s, "
                  f"render+encode+mark+sign {render:.2f} s | whole speak() {t3 - t2 + (t1 - t0):.2f} s = "
                  f"{(t3 - t2 + (t1 - t0)) / dur:.2f} s per second of video (speech part alone "
                  f"{(t2 - t0) / dur:.3f} s/s)")
            del track


if __name__ == "__main__":
    main()
