"""Rebuild src/talkinghead/assets/driving_grid.npz: the landmark track `make demo` drives the astronaut with.

    .venv/bin/python scripts/make_demo_motion.py [CLIP.mp4 ...]

Only landmarks are stored (no frames, no audio). Default clips: GRID corpus speaker 1 (CC BY 4.0), from
../shared/corpus/videos/grid_s1/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from talkinghead.faces.measures import apply, similarity
from talkinghead.faces.track import track_video

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["grid_s1_osalinasv__bbbs5s.mp4", "grid_s1_osalinasv__bgbb2p.mp4"]
RIGID = [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45]  # nose and eye corners: they do not move with speech
FADE = 8  # frames over which what is left of the cut fades out


def join(tracks: list[np.ndarray]) -> np.ndarray:
    """Concatenate landmark tracks without a cut: each next clip is moved rigidly (a similarity on the nose and
    eye corners) so that its first frame sits where the previous clip's last frame is, and what still differs
    (expression) fades out over FADE frames."""
    out = [tracks[0]]
    for nxt in tracks[1:]:
        last = out[-1][-1]
        mat = similarity(nxt[0, RIGID], last[RIGID])
        moved = np.stack([apply(mat, p) for p in nxt])
        rest = last - moved[0]
        n = min(FADE, len(moved))
        moved[:n] += rest[None] * np.linspace(1.0, 0.0, n + 1)[1:, None, None]
        out.append(moved)
    return np.concatenate(out)


def main() -> None:
    clips = sys.argv[1:] or [str(ROOT.parent / "shared" / "corpus" / "videos" / "grid_s1" / c) for c in DEFAULT]
    tracks, fps = [], None
    for clip in clips:
        lmk, f = track_video(clip)
        tracks.append(lmk)
        fps = fps or f
        print(f"{clip}: {len(lmk)} frames at {f:.2f} fps, {int(np.isnan(lmk[:, 0, 0]).sum())} without a face")
    lmk = join(tracks).astype(np.float32)
    step = np.abs(np.diff(lmk, axis=0)).max()
    print(f"largest frame-to-frame landmark step: {step:.1f} px")
    out = ROOT / "src" / "talkinghead" / "assets" / "driving_grid.npz"
    np.savez_compressed(out, landmarks=lmk, fps=np.float32(fps),
                        source=np.array("GRID corpus speaker s1 (CC BY 4.0): " + ", ".join(Path(c).name for c in clips)))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(lmk)} frames)")


if __name__ == "__main__":
    main()
