"""How far the face tracker's landmarks drift from a fresh fit, on real driving clips.

The tracker (``talkinghead.faces.track``) runs the detector only now and then and otherwise places the shape
predictor's box from the previous frame's landmarks. This compares its landmarks, frame by frame, with the same
predictor fitted on a fresh detection in that frame (the best the predictor does; the detector is what the tracker
saves), over the first 300 frames of each clip: the mean point error over the inter-ocular distance (outer eye
corners), its 99th percentile, the frames off by more than 0.1 and 0.2, the detections the tracker ran, the frames
where it gave no face while the detector found one, and the tracker's time.

    .venv/bin/python benchmarks/track_drift.py [VIDEO ...] [--corpus ../shared/corpus/videos] [--set KEY=VALUE]

Without videos it takes the first clip of each of 18 corpus identities with fast or large expressions and head
motion (grimaces, anger, laughter, a head turned to a profile). ``VIDEO#N`` follows the N-th largest face.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from talkinghead.config import TrackerConfig, parse_overrides
from talkinghead.faces.detect import FaceDetector, box_iou, to_gray
from talkinghead.faces.landmarks import LandmarkPredictor, landmark_box
from talkinghead.faces.track import FaceTracker
from talkinghead.io.video import VideoReader

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ["lp_d6_woman_grimace", "styletalk_surprisegirl", "styletalk_furious_man", "mead_W009", "lp_d3_woman",
         "edtalk_expr_woman", "styletalk_happyenglish_woman", "lp_d12_man_glasses", "mead_M030",
         "lp_d0_asian_man_greenscreen", "lp_d14_asian_woman", "dagan_vox_woman_shorthair", "lp_d9_man_glasses",
         "lp_d18_man", "lp_d19_man_glasses", "lp_d10_woman", "xportrait_man", "styletalk_nice_man"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", nargs="*")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "videos"))
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--set", action="append", default=[], help="override a TrackerConfig setting")
    args = ap.parse_args()
    videos = args.videos or [str(sorted(Path(args.corpus, c).glob("*.mp4"))[0]) for c in CLIPS]
    detector, predictor = FaceDetector(max_side=640), LandmarkPredictor()
    errors, detections, missed, seconds = [], 0, 0, 0.0
    for spec in videos:
        path, _, index = spec.partition("#")
        idx = int(index or 0)
        with VideoReader(path) as reader:
            frames = [f for _, f in zip(range(args.frames), reader)]
        fresh = []
        for f in frames:
            faces = detector.detect(f)
            fresh.append(predictor.predict(to_gray(f), faces[idx].box) if len(faces) > idx else None)
        tracker = FaceTracker(TrackerConfig(**{"smoothing": 0.0, "face_index": idx, **parse_overrides(args.set)}))
        t0 = time.perf_counter()
        tracked = [tracker.update(f).landmarks for f in frames]
        seconds += time.perf_counter() - t0
        err = []
        for got, ref in zip(tracked, fresh):
            if ref is None:
                continue
            if got is None:
                missed += 1
            elif box_iou(landmark_box(got), landmark_box(ref)) >= 0.2:  # not another face
                err.append(float(np.linalg.norm(got - ref, axis=1).mean() / np.linalg.norm(ref[36] - ref[45])))
        e = np.array(err)
        errors.append(e)
        detections += tracker.detections
        print(f"{Path(path).parent.name}/{Path(path).name}: {len(e)} frames, mean {e.mean():.4f}, "
              f"> 0.1: {int((e > 0.1).sum())}, detections {tracker.detections}", flush=True)
    e = np.concatenate(errors)
    print(f"all {len(videos)} clips: {len(e)} frames, mean error {e.mean():.4f} inter-ocular, p99 "
          f"{np.percentile(e, 99):.3f}, > 0.1: {int((e > 0.1).sum())}, > 0.2: {int((e > 0.2).sum())}; detections "
          f"{detections}, frames with no face tracked where one was detected {missed}; tracking {seconds:.1f} s")


if __name__ == "__main__":
    main()
