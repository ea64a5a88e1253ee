"""Live animation speed: sustained fps and capture → output latency (p50/p95), for the CLI path and the browser
path, and the process's RSS over a long paced stream. Prints figures; asserts nothing.

CLI path: the code of ``talkinghead live --driving VIDEO --out OUT.mp4`` (in this process): a driving clip played
at its real frame rate like a camera (looped for long runs), animated by ``Animator.stream`` and recorded
(watermarked and signed). Latency: from the moment a frame is delivered by the paced source to its output.

Browser path: ``talkinghead serve`` in this process and Debian's headless Chromium with a fake camera playing a
.y4m made from the same clip. An init script stamps each webcam grab with the browser's clock (``Date.now()``
just before the JPEG is encoded) and puts the stamp into the request's hidden clock input; the server carries it
through and returns it with the frame; the page records when each animated frame arrives. Latency: browser grab
→ frame back in the browser (same machine clock).

    python benchmarks/live_latency.py                                  # both paths, 30 s each, shipped model
    python benchmarks/live_latency.py --model runs/warp --path cli     # another model (a training run's newest)
    python benchmarks/live_latency.py --path cli --minutes 10          # RSS over a 10-minute paced stream
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from talkinghead.data.examples import astronaut, astronaut_video  # noqa: E402
from talkinghead.inference import live  # noqa: E402
from talkinghead.inference.animate import AnimateOptions, Animator  # noqa: E402
from talkinghead.provenance.marking import marking  # noqa: E402

FPS = 25.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def driving_clip(size: int = 480) -> list[np.ndarray]:
    """4 s of the astronaut's face moving (scikit-image's photo, warped): 640x480 frames."""
    frames, _ = astronaut_video(seconds=4.0, fps=FPS, size=size)
    pad = (640 - size) // 2
    return [np.pad(f, ((0, 0), (pad, pad), (0, 0)), mode="edge") for f in frames]


def cli_path(model: str | None, seconds: float, rss_every: float, out_dir: Path) -> None:
    live.live_threads()
    anim = Animator(model, device="cpu")
    anim.set_source([astronaut()], progress=False)
    clip = driving_clip()
    marker = marking(True, True, model=anim.bundle)
    rec = live.Recorder(out_dir / "live.mp4", FPS, marker)
    stream = anim.stream(live.paced(itertools.cycle(clip), FPS), AnimateOptions(progress=False), fps=FPS,
                         mark=marker)
    samples: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    next_sample = [0.0]

    def on_frame(_lf: live.LiveFrame) -> None:
        t = time.perf_counter() - t0
        if t >= next_sample[0]:
            samples.append((t, rss_mb()))
            next_sample[0] += rss_every

    result = live.run_session(stream, rec, seconds=seconds, on_frame=on_frame)
    st = result.stats
    print(f"CLI path ({model or 'shipped model'}, arch {anim.bundle.config.arch} {anim.resolution}²): {st.line()}")
    print(f"  sustained {st.fps:.1f} fps, latency p50 {st.p50 * 1000:.0f} ms, p95 {st.p95 * 1000:.0f} ms, "
          f"dropped {st.dropped}/{st.received}; recording {result.recorded_frames} frames at {FPS:g} fps")
    if len(samples) >= 2:
        warm = [r for t, r in samples if t >= min(60.0, seconds / 4)] or [samples[-1][1]]
        print(f"  RSS: {samples[0][1]:.0f} MB at {samples[0][0]:.0f} s, {samples[-1][1]:.0f} MB at "
              f"{samples[-1][0]:.0f} s; after warm-up min {min(warm):.0f} / max {max(warm):.0f} MB "
              f"(spread {max(warm) - min(warm):.1f} MB over {len(warm)} samples)")
        print("  RSS samples (s, MB): " + ", ".join(f"{t:.0f}:{r:.0f}" for t, r in samples))


INIT_JS = """
(() => {
  window.__cap = 0; window.__arrivals = [];
  const toDataURL = HTMLCanvasElement.prototype.toDataURL;
  HTMLCanvasElement.prototype.toDataURL = function(...a) { window.__cap = Date.now(); return toDataURL.apply(this, a); };
  const fetch0 = window.fetch;
  window.fetch = function(url, opts) {
    try {
      if (opts && opts.method === 'POST' && typeof opts.body === 'string' && /queue\\/join|\\/stream\\//.test(String(url))) {
        const b = JSON.parse(opts.body);
        if (Array.isArray(b.data) && b.data.length === 3 && b.data[0] && String(b.data[0].url || '').startsWith('data:image')) {
          b.data[2] = window.__cap; opts = {...opts, body: JSON.stringify(b)};
        }
      }
    } catch (e) {}
    return fetch0.call(this, url, opts);
  };
  let seen = '';
  new MutationObserver(() => {
    const m = document.querySelector('#live-output .live-meta');
    if (m && m.dataset.frame !== seen) {
      seen = m.dataset.frame;
      window.__arrivals.push([Date.now(), +m.dataset.captured, +m.dataset.received, +m.dataset.sent, +m.dataset.face]);
    }
  }).observe(document, {subtree: true, childList: true, attributes: true});
})();
"""


def browser_path(model: str | None, seconds: float, out_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    from talkinghead.web import Limits, serve

    y4m = live.write_y4m(out_dir / "camera.y4m", driving_clip(), FPS)
    port = 7990
    demo = serve(port=port, model=model, limits=Limits(), device="cpu", temp_dir=out_dir / "web", block=False)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={y4m}"]
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(out_dir / "profile"), executable_path="/usr/bin/chromium",
                                                        headless=True, args=args)
            ctx.add_init_script(INIT_JS)
            page = ctx.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="Live").click()
            page.locator("#live-camera").get_by_text("Click to Access Webcam").click()
            page.locator("#live-camera").get_by_role("button", name="capture photo").click()
            page.wait_for_function("window.__arrivals.length > 3", timeout=120_000)
            page.evaluate("window.__arrivals = []")  # the session's start (model load) is not steady state
            time.sleep(seconds)
            arrivals = page.evaluate("window.__arrivals")
            ctx.close()
    finally:
        demo.close()
    a = np.array(arrivals, dtype=np.float64)
    if len(a) < 2:
        print("browser path: no frames arrived")
        return
    e2e = a[:, 0] - a[:, 1]
    server = a[:, 3] - a[:, 2]
    span = (a[-1, 0] - a[0, 0]) / 1000
    stamped = bool((a[:, 1] != a[:, 2]).all())
    print(f"browser path ({model or 'shipped model'}): {len(a)} frames in {span:.1f} s: {(len(a) - 1) / span:.1f} fps "
          f"sustained; grab → displayed latency p50 {np.percentile(e2e, 50):.0f} ms, p95 "
          f"{np.percentile(e2e, 95):.0f} ms (stamps carried through: {stamped}); server receive → send p50 "
          f"{statistics.median(server):.0f} ms; face found in {a[:, 4].mean() * 100:.0f} % of frames")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file or training run (default: the shipped model)")
    ap.add_argument("--path", choices=["cli", "browser", "both"], default="both")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each measurement (default 30)")
    ap.add_argument("--minutes", type=float, help="CLI path: run this long instead (RSS over a long session)")
    ap.add_argument("--rss-every", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
        if args.path in ("cli", "both"):
            seconds = args.minutes * 60 if args.minutes else args.seconds
            cli_path(args.model, seconds, args.rss_every, Path(tmp))
        if args.path in ("browser", "both"):
            browser_path(args.model, args.seconds, Path(tmp))


if __name__ == "__main__":
    main()
