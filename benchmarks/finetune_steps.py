"""How many fine-tuning steps? Self-reenactment error against the number of steps, for T source frames.

    .venv/bin/python benchmarks/finetune_steps.py [--model FILE] [--steps 0,20,60,120] [--shots 1,8]

Source: T diverse frames of one clip of a validation identity; driving: another clip of the same person, with
absolute landmarks (the person is the same). The real driving frame, warped into the source crop by the same
alignment, is the ground truth: prints L1 and PSNR at the model's resolution over the driving frames, and the
fine-tuning time. Needs ../shared/corpus.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from talkinghead.faces.track import track_video
from talkinghead.inference.animate import CROP_SIZE, Animator
from talkinghead.inference.retarget import Retargeter
from talkinghead.io.video import read_video
from talkinghead.models.bundle import load_model

ROOT = Path(__file__).resolve().parents[1]
W9 = ROOT.parent / "shared" / "corpus" / "videos" / "mead_W009"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--source", default=str(W9 / "dreamtalk__W009_front_neutral_level1_001.mp4"))
    ap.add_argument("--driving", default=str(W9 / "dreamtalk__W009_front_happy_level3_001.mp4"))
    ap.add_argument("--steps", default="0,20,60,120")
    ap.add_argument("--shots", default="1,8")
    ap.add_argument("--frames", type=int, default=40, help="driving frames compared (evenly spaced)")
    args = ap.parse_args()
    base = load_model(args.model)
    res = base.config.resolution
    drv, _ = read_video(args.driving)
    lmk, _ = track_video(args.driving)
    ok = np.where(~np.isnan(lmk[:, 0, 0]))[0]
    pick = ok[np.round(np.linspace(0, len(ok) - 1, args.frames)).astype(int)]
    print(f"model {res}², source {Path(args.source).name}, driving {Path(args.driving).name} ({len(pick)} frames)")
    print(f"{'T':>3}{'steps':>7}{'L1':>9}{'PSNR dB':>9}{'FT s':>8}")
    for shots in (int(s) for s in args.shots.split(",")):
        for steps in (int(s) for s in args.steps.split(",")):
            anim = Animator(base, device="cpu")
            t0 = time.perf_counter()
            anim.set_source([args.source], shots=shots, finetune_steps=steps, progress=False)
            ft = time.perf_counter() - t0 if steps else 0.0
            src = anim.sources[0]
            ret = Retargeter(src.landmarks, relative=False)
            ret.set_reference(lmk[pick[0]])
            assert ret._to_source is not None
            targets = np.stack([ret(lmk[i]) for i in pick])  # 256² crop pixels
            gen = np.concatenate([anim.render(targets[i : i + 8]) for i in range(0, len(targets), 8)])
            gen = gen.astype(np.float32)
            real = np.stack([cv2.warpAffine(drv[i], ret._to_source, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_AREA,
                                            borderMode=cv2.BORDER_REPLICATE) for i in pick])
            if res != CROP_SIZE:
                real = np.stack([cv2.resize(r, (res, res), interpolation=cv2.INTER_AREA) for r in real])
            real = real.astype(np.float32)
            l1 = np.abs(gen - real).mean() / 255
            mse = ((gen - real) ** 2).mean(axis=(1, 2, 3))
            psnr = float(np.mean(10 * np.log10(255**2 / np.maximum(mse, 1e-6))))
            print(f"{shots:>3}{steps:>7}{l1:>9.4f}{psnr:>9.2f}{ft:>8.1f}")


if __name__ == "__main__":
    main()
