"""Rebuild src/talkinghead/assets/driving_grid.npz: the landmark track `make demo` drives the astronaut with.

    .venv/bin/python scripts/make_demo_motion.py [CLIP.mp4 ...]

Only landmarks are stored (no frames, no audio). Default clips: GRID corpus speaker 1 (CC BY 4.0), from
../shared/corpus/videos/grid_s1/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from talkinghead.faces.track import track_video

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["grid_s1_osalinasv__bbbs5s.mp4", "grid_s1_osalinasv__bgbb2p.mp4"]


def main() -> None:
    clips = sys.argv[1:] or [str(ROOT.parent / "shared" / "corpus" / "videos" / "grid_s1" / c) for c in DEFAULT]
    tracks, fps = [], None
    for clip in clips:
        lmk, f = track_video(clip)
        tracks.append(lmk)
        fps = fps or f
        print(f"{clip}: {len(lmk)} frames at {f:.2f} fps, {int(np.isnan(lmk[:, 0, 0]).sum())} without a face")
    lmk = np.concatenate(tracks).astype(np.float32)
    out = ROOT / "src" / "talkinghead" / "assets" / "driving_grid.npz"
    np.savez_compressed(out, landmarks=lmk, fps=np.float32(fps),
                        source=np.array("GRID corpus speaker s1 (CC BY 4.0): " + ", ".join(Path(c).name for c in clips)))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(lmk)} frames)")


if __name__ == "__main__":
    main()
