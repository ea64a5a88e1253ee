"""Figures for docs/: training curves and result frames of the shipped model (needs ../shared/corpus).

    .venv/bin/python scripts/make_docs_figures.py [--run runs/tiny-cpu] [--finetune-steps 60]

With ``--run``, writes docs/training_losses.png (from RUN/metrics.jsonl) and copies the run's first and last sample
grids (without it, those figures are left as they are). Always animates (a) a validation identity of the corpus (source: one frame of one clip; driving: another clip of the same
person; real frames shown for comparison) feed-forward and fine-tuned, and (b) a painting driven by a validation
clip. Frames are PNG grids: driving (= real, for the same person) | feed-forward | fine-tuned.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from talkinghead.faces.crop import crop_image, face_crop_box
from talkinghead.faces.track import track_video
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.io.images import write_image
from talkinghead.io.video import read_video

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def plot_losses(run: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    groups = (["content", "l1"], ["feature_matching", "match", "smoothness", "gen_outside"],
              ["d_hinge", "d_real", "d_fake", "adversarial"])
    for ax, group in zip(axes, groups):
        for k in group:
            have = [(r["step"], r[k]) for r in recs if k in r]
            if not have:
                continue
            xs, ys = np.array([h[0] for h in have]), np.array([h[1] for h in have])
            if k == "l1":
                ys = ys * 10  # shown at its loss weight
                k = "l1 x 10"
            w = max(1, len(ys) // 50)
            smooth = np.convolve(ys, np.ones(w) / w, mode="valid")
            ax.plot(xs[w - 1 :], smooth, label=k)
        ax.set_xlabel("step")
        if not ax.lines:  # e.g. a run without the adversarial phase
            ax.set_axis_off()
            continue
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{run.name}: losses ({len(recs)} log points, moving average over 1/50 of them)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


def frames_grid(rows: list[list[np.ndarray]], size: int = 160) -> np.ndarray:
    import cv2

    tiles = [[cv2.resize(t, (size, size), interpolation=cv2.INTER_AREA) for t in row] for row in rows]
    return np.concatenate([np.concatenate(r, axis=1) for r in tiles], axis=0)


def animate_pair(source: str | Path, driving: Path, ft_steps: int, tmp: Path, pick: list[int],
                 model: str | None = None) -> np.ndarray:
    """Rows: driving frame (the real frame when source and driver are one person) | feed-forward | fine-tuned."""
    outs = []
    for steps in (0, ft_steps):
        anim = Animator(model, device="cpu")
        anim.set_source([source], shots=1, finetune_steps=steps, progress=False)
        res = anim.animate(driving, tmp / f"o{steps}.mp4", AnimateOptions(progress=False, watermark=False))
        frames, _ = read_video(res.path)
        outs.append(frames)
    drv, _ = read_video(driving)
    lmk, _ = track_video(str(driving))
    good = lmk[~np.isnan(lmk[:, 0, 0])]
    box = face_crop_box(good)
    rows = []
    for i in pick:
        rows.append([crop_image(drv[i], box, 256), outs[0][i], outs[1][i]])
    return frames_grid(rows)


def training_figures(run: Path, docs: Path) -> None:
    plot_losses(run, docs / "training_losses.png")
    samples = sorted((run / "samples").glob("*.png"))
    if samples:
        shutil.copy(samples[-1], docs / "training_samples_last.png")
        first = docs / "training_samples_first.png"
        if len(samples) > 1:
            shutil.copy(samples[0], first)
        elif first.exists():  # a run with one sample grid (e.g. a short GPU run): no stale grid of another run
            first.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="the training run whose losses and sample grids to show (default: leave them)")
    ap.add_argument("--finetune-steps", type=int, default=60)
    ap.add_argument("--model", help="model to animate with (default: the shipped one)")
    args = ap.parse_args()
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    if args.run:
        training_figures(Path(args.run), docs)
    tmp = Path(tempfile.mkdtemp())
    w9 = CORPUS / "videos" / "mead_W009"
    src = w9 / "dreamtalk__W009_front_neutral_level1_001.mp4"
    drv = w9 / "dreamtalk__W009_front_happy_level3_001.mp4"
    write_image(docs / "animate_val_mead_W009.png", animate_pair(src, drv, args.finetune_steps, tmp, [10, 40, 70, 100],
                                                                       args.model))
    painting = CORPUS / "images" / "paintings" / "lia__mona_lisa.jpg"
    drv2 = CORPUS / "videos" / "grid_spk_brbk7n_woman" / "lipnet_grid__brbk7n.mp4"
    write_image(docs / "animate_painting.png", animate_pair(painting, drv2, args.finetune_steps, tmp, [5, 25, 45, 65],
                                                                   args.model))
    print("wrote", ", ".join(p.name for p in sorted(docs.glob("*.png"))))


if __name__ == "__main__":
    main()
