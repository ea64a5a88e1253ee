"""docs/speak_painting.png: frames of a `talkinghead speak` output in a strip, each labelled with its time, the
mouth of each frame enlarged under it, and a plot of the speech's loudness and of the mouth and eye opening of the
landmark track that drove the renderer (recomputed: the motion is deterministic).

    talkinghead speak --source PAINTING --text "..." --out /tmp/speak.mp4
    python scripts/make_speak_strip.py /tmp/speak.mp4 --source PAINTING --text "..." --out docs/speak_painting.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from talkinghead.data.audio import loudness
from talkinghead.faces.measures import eye_opening, mouth_opening
from talkinghead.io.images import write_image
from talkinghead.io.video import read_video
from talkinghead.speech.drive import SpeechDriver, load_speech


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("--source", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--out", default="docs/speak_painting.png")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--first", type=float, default=0.0, help="first frame's time (s)")
    ap.add_argument("--step", type=float, default=0.12, help="time between the frames shown (s)")
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--no-lip-closures", action="store_true", help="the video was made with speak --no-lip-closures")
    args = ap.parse_args()

    frames, info = read_video(args.video)
    fps = info.fps
    picks = [min(len(frames) - 1, int(round((args.first + i * args.step) * fps))) for i in range(args.frames)]

    # the same speech and motion again (deterministic): mouth positions for the zoom, curves for the plot
    from talkinghead.config import PrepareConfig
    from talkinghead.inference.source import load_sources

    with tempfile.TemporaryDirectory() as tmp:
        speech = load_speech(None, args.text, Path(tmp), fps=fps)
    source = load_sources([args.source], 1, PrepareConfig(size=256))[0]
    track = SpeechDriver(lip_closures=not args.no_lip_closures).track(source.landmarks, speech.features, fps,
                                                                     speech.phonemes)

    def said(t: float) -> str:
        """The phoneme heard at time ``t`` (IPA without stress marks; "" in a pause)."""
        for ph in speech.phonemes or []:
            if ph.start <= t < ph.end and ph.end > ph.start:
                return ph.symbol.replace("ˈ", "").replace("ˌ", "")
        return ""

    try:  # OpenCV fonts have no IPA glyphs: the phonemes are drawn with PIL
        font = ImageFont.truetype("DejaVuSans.ttf", 22)
    except OSError:
        font = ImageFont.load_default()
    tiles, zooms = [], []
    for i in picks:
        frame = frames[i]
        tile = cv2.resize(frame, (args.size, args.size), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, f"{i / fps:.2f}s", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 0), 2, cv2.LINE_AA)
        label = said(i / fps)
        if label:
            img = Image.fromarray(tile)
            ImageDraw.Draw(img).text((6, 26), f"/{label}/", fill=(255, 255, 0), font=font, stroke_width=2,
                                     stroke_fill=(0, 0, 0))
            tile = np.asarray(img)
        tiles.append(tile)
        mouth = track.landmarks[min(i, len(track.landmarks) - 1), 48:68] * (frame.shape[0] / 256.0)
        cx, cy = mouth.mean(0)
        half = max(12.0, float(np.ptp(mouth[:, 0])) * 0.75)
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        crop = frame[y0 : int(cy + half), x0 : int(cx + half)]
        zooms.append(cv2.resize(crop, (args.size, args.size), interpolation=cv2.INTER_CUBIC))
    strip = np.concatenate([np.concatenate(tiles, 1), np.concatenate(zooms, 1)], 0)
    loud = loudness(speech.features)
    mouth = mouth_opening(track.landmarks)
    eyes = eye_opening(track.landmarks)
    w, h = strip.shape[1], 150
    plot = np.full((h, w, 3), 255, np.uint8)
    n = len(loud)
    xs = np.linspace(0, w - 1, n)

    def line(values: np.ndarray, lo: float, hi: float, color: tuple[int, int, int]) -> None:
        ys = h - 10 - (np.clip((values - lo) / (hi - lo + 1e-9), 0, 1) * (h - 30))
        pts = np.stack([xs, ys], 1).astype(np.int32)
        cv2.polylines(plot, [pts], False, color, 2, cv2.LINE_AA)

    line(loud, loud.min(), loud.max(), (160, 160, 160))
    line(mouth, 0, max(0.3, mouth.max()), (200, 30, 30))
    line(eyes, 0, max(0.3, eyes.max()), (30, 90, 200))
    for i in picks:
        x = int(i / max(n - 1, 1) * (w - 1))
        cv2.line(plot, (x, 0), (x, h), (0, 170, 0), 1)
    cv2.putText(plot, "grey: loudness   red: mouth opening   blue: eye opening   green: frames above", (6, 16),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    write_image(args.out, np.concatenate([strip, plot], 0))
    print(f"wrote {args.out}: frames {picks} of {len(frames)}")


if __name__ == "__main__":
    main()
