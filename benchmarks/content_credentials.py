"""Content Credentials (C2PA) next to the watermark: round trip, tampering, re-encoding, cost per output file.

    .venv/bin/python benchmarks/content_credentials.py [--seconds 8] [--out DIR] [--reader-json FILE]

Animates the astronaut with the shipped model (driven by a generated clip of the astronaut, ``--seconds`` long,
256² output; once plain, once ``--paste-back --side-by-side`` for 512x1024 frames) with ``--frames``, then:

* round trip: ``verify_file`` on the mp4 and a PNG frame (manifest, signature, content hash, watermark);
* tampering: one byte in the middle of the mp4's ``mdat`` (the coded video) flipped;
* re-encoding: every frame decoded and written again with libx264 at crf 23;
* cost: signing the same (unsigned) outputs again, best of 3, time and bytes added per file, and the time
  ``verify`` spends reading the manifest;
* c2pa-python's own ``Reader`` on the mp4 (its JSON written to ``--reader-json``).

Signing keys go to a temporary ``XDG_CONFIG_HOME`` unless one is set. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def _render(out: Path, seconds: float, frames_dir: Path, credentials: bool, **opts: object) -> float:
    from talkinghead.assets import default_model_path
    from talkinghead.data.examples import astronaut, astronaut_video
    from talkinghead.inference.animate import AnimateOptions, Animator
    from tests.conftest import write_frames

    driving = out.parent / "driving.mp4"
    if not driving.exists():
        write_frames(driving, astronaut_video(seconds=seconds, fps=25.0, size=320)[0])
    anim = Animator(None, device="cpu")
    anim.set_source([astronaut()])
    t0 = time.perf_counter()
    anim.animate(driving, out, AnimateOptions(progress=False, frames_dir=frames_dir, credentials=credentials,
                                              model_file=default_model_path(), **opts))  # type: ignore[arg-type]
    return time.perf_counter() - t0


def _line(name: str, r: object) -> None:
    print(f"  {name}: synthetic={r.synthetic}  verdict: {r.verdict}")  # type: ignore[attr-defined]
    for d in r.details:  # type: ignore[attr-defined]
        print(f"    {d}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--out", help="folder for the outputs (default: a temporary one)")
    ap.add_argument("--reader-json", help="write c2pa.Reader's JSON of the signed mp4 here")
    args = ap.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="cc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_CONFIG_HOME", str(work / "config"))

    import c2pa
    import numpy as np

    from talkinghead.assets import default_model_path
    from talkinghead.io.video import VideoWriter, read_video
    from talkinghead.provenance.credentials import content_credentials, read_credentials
    from talkinghead.provenance.verify import verify_file
    from talkinghead.provenance.watermark import Payload

    print(f"c2pa-python {c2pa.__version__} (c2pa-rs {c2pa.sdk_version()}); outputs in {work}")
    cases = {"256x256": {}, "512x1024 (paste-back, side-by-side)": {"paste_back": True, "side_by_side": True}}
    for name, opts in cases.items():
        tag = name.split()[0]
        signed, plain = work / f"signed-{tag}.mp4", work / f"plain-{tag}.mp4"
        t_signed = _render(signed, args.seconds, work / f"frames-signed-{tag}", True, **opts)
        t_plain = _render(plain, args.seconds, work / f"frames-plain-{tag}", False, **opts)
        frames = sorted((work / f"frames-plain-{tag}").glob("*.png"))
        print(f"\n== {name}: {len(frames)} frames; render with credentials {t_signed:.2f} s, without {t_plain:.2f} s "
              "(whole pipeline, includes PNG frames; noisy on a shared machine)")
        print("round trip:")
        _line(signed.name, verify_file(signed))
        _line("frame 000000.png", verify_file(work / f"frames-signed-{tag}" / "000000.png"))

        data = bytearray(signed.read_bytes())
        i = data.find(b"mdat")
        size = int.from_bytes(data[i - 4 : i], "big")
        data[i - 4 + size // 2] ^= 0x01
        tampered = work / f"tampered-{tag}.mp4"
        tampered.write_bytes(bytes(data))
        print("one byte of the coded video changed:")
        _line(tampered.name, verify_file(tampered))

        video, info = read_video(signed)
        reenc = work / f"reencoded-crf23-{tag}.mp4"
        with VideoWriter(reenc, fps=info.fps, crf=23) as w:
            for f in video:
                w.write(f)
        print("re-encoded at crf 23:")
        _line(reenc.name, verify_file(reenc))

        creds = content_credentials(Payload.new(), model=None, model_file=default_model_path())
        sizes, times = [], []
        for src in [plain, *frames[:20]]:
            best = np.inf
            for _ in range(3):
                copy = work / ("copy" + src.suffix)
                shutil.copy(src, copy)
                before = copy.stat().st_size
                t0 = time.perf_counter()
                creds.sign_file(copy)
                best = min(best, time.perf_counter() - t0)
            sizes.append((before, copy.stat().st_size - before))
            times.append(best)
        print(f"cost per file: mp4 ({sizes[0][0] / 1024:.0f} KiB, {len(video)} frames): +{sizes[0][1]} bytes "
              f"({100 * sizes[0][1] / sizes[0][0]:.2f} %), {1000 * times[0]:.1f} ms to sign")
        png_add = [s[1] for s in sizes[1:]]
        png_size = np.mean([s[0] for s in sizes[1:]])
        print(f"              PNG frame (mean {png_size / 1024:.0f} KiB): +{np.mean(png_add):.0f} bytes "
              f"({100 * np.mean(png_add) / png_size:.2f} %), {1000 * np.median(times[1:]):.1f} ms to sign (median "
              f"of {len(times) - 1}); all {len(frames)} frames: ~{np.median(times[1:]) * len(frames):.2f} s")
        t0 = time.perf_counter()
        for _ in range(3):
            read_credentials(signed)
        print(f"              reading + validating the mp4's manifest: {1000 * (time.perf_counter() - t0) / 3:.1f} ms")

    with c2pa.Reader(str(work / "signed-256x256.mp4")) as reader:
        text = reader.json()
        print(f"\nc2pa.Reader validation state: {reader.get_validation_state()}")
    if args.reader_json:
        Path(args.reader_json).write_text(text)
    store = json.loads(text)
    active = store["manifests"][store["active_manifest"]]
    print(json.dumps({"assertions": [a for a in active["assertions"] if not a["label"].startswith("c2pa.hash")],
                      "signature_info": active["signature_info"], "validation_status": store["validation_status"]},
                     indent=1))


if __name__ == "__main__":
    main()
