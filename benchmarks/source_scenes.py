"""How unlike are the surroundings of source photos from one scene and from other scenes? Prints figures; asserts
nothing. What ``SCENE_DISTANCE`` (``talkinghead/inference/source.py``) was set from.

One scene: 4 frames (first, a third, two thirds, last) of the first clip of each corpus identity, saved as photos
and loaded as separate sources. Other scenes: the first 4 photos of LFW people with 3 or more (other occasions).
For each set, :func:`~talkinghead.inference.source.scene_distance` of every photo to the first.

    .venv/bin/python benchmarks/source_scenes.py [--pairs 90]
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from talkinghead.errors import InputError
from talkinghead.inference.source import SCENE_DISTANCE, load_sources, scene_distance
from talkinghead.io import read_video

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def distances(sets: list[list[Path]], pairs: int) -> list[float]:
    out: list[float] = []
    for paths in sets:
        try:
            faces = load_sources(paths, one_scene=False)
        except InputError:  # no face in one of them
            continue
        out += [scene_distance(faces[0], f) for f in faces[1:]]
        if len(out) >= pairs:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=90)
    args = ap.parse_args()
    logging.getLogger("talkinghead").setLevel(logging.ERROR)
    people = [sorted(d.glob("*.jpg"))[:4] for d in sorted((CORPUS / "images" / "lfw").iterdir()) if d.is_dir()]
    other = distances([p for p in people if len(p) >= 3], args.pairs)
    with tempfile.TemporaryDirectory() as tmp, open(CORPUS / "videos.csv", newline="") as f:
        seen: set[str] = set()
        sets = []
        for row in csv.DictReader(f):
            if row["identity"] in seen:
                continue
            seen.add(row["identity"])
            frames, _ = read_video(CORPUS / row["path"])
            paths = []
            for i in sorted({0, len(frames) // 3, 2 * len(frames) // 3, len(frames) - 1}):
                paths.append(Path(tmp) / f"{row['identity']}_{i}.png")
                Image.fromarray(frames[i]).save(paths[-1])
            sets.append(paths)
        one = distances(sets, args.pairs)
    for name, d in (("one scene (corpus clips' frames)", one), ("other scenes (LFW photos)", other)):
        v = np.array(d)
        print(f"{name}: {len(v)} pairs; median {np.median(v):.1f}, 5th / 95th percentile "
              f"{np.percentile(v, 5):.1f} / {np.percentile(v, 95):.1f}, min {v.min():.1f}, max {v.max():.1f}; "
              f"over {SCENE_DISTANCE:g} (left out): {(v > SCENE_DISTANCE).mean():.1%}")


if __name__ == "__main__":
    main()
