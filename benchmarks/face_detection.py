"""Still pictures: which faces dlib's HOG detector misses, and which of those the fallback for stills finds (HOG
detections below its threshold that dlib's CNN detector confirms: ``FaceDetector.detect_still``), at what cost.

    .venv/bin/python benchmarks/face_detection.py [FOLDER ...]   # default: the corpus' paintings and portraits

Every picture in the folders (recursively) goes through ``detect_thorough`` (HOG, what is tried first); for
those with no face it prints what the CNN detector finds, what ``detect_still`` keeps, and the fallback's time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from talkinghead.faces.detect import CnnFaceDetector, FaceDetector
from talkinghead.io.images import IMAGE_EXTENSIONS, read_image

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", default=[str(CORPUS / "paintings"), str(CORPUS / "portraits")])
    args = ap.parse_args()
    files = sorted(p for f in args.folders for p in Path(f).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    hog, cnn = FaceDetector(max_side=1024), CnnFaceDetector()
    t0 = time.perf_counter()
    missed = [p for p in files if not hog.detect_thorough(read_image(p))]
    hog_s = (time.perf_counter() - t0) / max(1, len(files))
    print(f"{len(files)} pictures; HOG ({hog_s * 1000:.0f} ms/picture) finds no face in {len(missed)}:")
    kept = 0
    for p in missed:
        img = read_image(p)
        t = time.perf_counter()
        still = hog.detect_still(img)
        dt = time.perf_counter() - t
        found = cnn.detect_thorough(img)
        kept += bool(still)
        what = f"kept {len(still)} (HOG score {still[0].score:+.2f})" if still else "kept none"
        print(f"  {p.name:<44} {img.shape[1]}x{img.shape[0]:<6} CNN: {len(found)} face(s); {what:<26} {dt:.1f} s")
    print(f"detect_still finds a face in {kept} of the {len(missed)}")


if __name__ == "__main__":
    main()
