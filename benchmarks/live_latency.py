"""Live animation speed: sustained fps and capture → output latency (p50/p95), for the CLI path and the browser
path, and the process's RSS over a long paced stream. Prints figures; asserts nothing.

CLI path: the code of ``talkinghead live --driving VIDEO --out OUT.mp4`` (in this process): a driving clip played
at its real frame rate like a camera (looped for long runs), animated by ``Animator.stream`` and recorded
(watermarked and signed). Latency: from the moment a frame is delivered by the paced source to its output.

Browser path: ``talkinghead serve`` in this process and Debian's headless Chromium with a fake camera playing a
.y4m made from the same clip. An init script stamps each webcam grab with the browser's clock (``Date.now()``
just before the JPEG is encoded) and puts the stamp into the request's hidden clock input; the server carries it
through and returns it with the frame; the page records when each animated frame arrives. Latency: browser grab
→ frame back in the browser (same machine clock). It also prints where the time goes (grab → handler, the
handler's stages, handler → page) and the CPU used by the server and by each kind of Chromium process.

    python benchmarks/live_latency.py                                  # both paths, 30 s each, shipped model
    python benchmarks/live_latency.py --model runs/warp --path cli     # another model (a training run's newest)
    python benchmarks/live_latency.py --path cli --minutes 10          # RSS over a 10-minute paced stream
    python benchmarks/live_latency.py --path browser --camera 640x480 --upsample 0 --stream-every 0.04   # other settings
"""

from __future__ import annotations

import argparse
import itertools
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
  window.__cap = 0; window.__grabs = 0; window.__arrivals = [];
  const toDataURL = HTMLCanvasElement.prototype.toDataURL;
  HTMLCanvasElement.prototype.toDataURL = function(...a) {
    window.__cap = Date.now(); window.__grabs++; return toDataURL.apply(this, a);
  };
  // Put the grab's stamp into the request's third input (the hidden clock). Stream chunks are rewritten in
  // place (the stamp is the last value before "event_data": no parsing of the ~60 kB body); others are parsed.
  const fetch0 = window.fetch;
  window.fetch = function(url, opts) {
    try {
      const body = opts && opts.method === 'POST' && typeof opts.body === 'string' ? opts.body : null;
      if (body && body.includes('"data":[{"url":"data:image') && /\\/stream\\/|queue\\/join/.test(String(url))) {
        const end = body.indexOf('],"event_data"');
        if (end > 0) {
          const start = body.lastIndexOf(',', end);
          opts = {...opts, body: body.slice(0, start + 1) + window.__cap + body.slice(end)};
        } else {
          const b = JSON.parse(body);
          if (Array.isArray(b.data) && b.data.length === 3) { b.data[2] = window.__cap; opts = {...opts, body: JSON.stringify(b)}; }
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
      window.__arrivals.push([Date.now(), +m.dataset.captured, +m.dataset.received, +m.dataset.sent, +m.dataset.face,
                              ...(m.dataset.stages || '').split(',').map(Number)]);
    }
  }).observe(document, {subtree: true, childList: true, attributes: true});
})();
"""


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of this process and of Chromium's processes, by kind."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == server_pid:
            name = "server (Python)"
        elif "chromium" in cmd.split(" ", 1)[0]:
            kind = next((a[7:] for a in cmd.split() if a.startswith("--type=")), "browser")
            sub = next((a.split("=")[1].split(".")[0] for a in cmd.split() if a.startswith("--utility-sub-type=")), "")
            name = f"Chromium {kind}" + (f" ({sub})" if sub else "")
        else:
            continue
        out[name] = out.get(name, 0.0) + (int(stat[11]) + int(stat[12])) / tick
    return out


def browser_path(model: str | None, seconds: float, out_dir: Path, stream_every: float | None = None,
                 camera: str | None = None, upsample: int | None = None) -> None:
    import os

    from playwright.sync_api import sync_playwright

    from talkinghead.web import Limits, serve
    from talkinghead.web import live as web_live

    # other settings than the page's, to compare them (the page reads these when it is built)
    if stream_every is not None:
        web_live.STREAM_EVERY = stream_every
    if camera is not None:
        w, h = (int(v) for v in camera.lower().split("x"))
        web_live.CAMERA = {"video": {"width": {"ideal": w}, "height": {"ideal": h}}}
        web_live.MAX_SIDE = max(w, h)
    if upsample is not None:
        web_live.DETECT_UPSAMPLE = upsample

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
            time.sleep(2.0)  # the session's start (model load, first detection) is not steady state
            page.evaluate("window.__arrivals = []; window.__grabs = 0")
            cpu0, t0 = cpu_seconds(os.getpid()), time.perf_counter()
            time.sleep(seconds)
            cpu1, wall = cpu_seconds(os.getpid()), time.perf_counter() - t0
            arrivals, grabs = page.evaluate("[window.__arrivals, window.__grabs]")
            size = page.evaluate("(() => { const v = document.querySelector('#live-camera video');"
                                 " return v ? [v.videoWidth, v.videoHeight] : [0, 0]; })()")
            ctx.close()
    finally:
        demo.close()
    if len(arrivals) < 2:
        print("browser path: no frames arrived")
        return
    n = max(len(a) for a in arrivals)
    a = np.array([r + [np.nan] * (n - len(r)) for r in arrivals], dtype=np.float64)
    e2e = a[:, 0] - a[:, 1]
    span = (a[-1, 0] - a[0, 0]) / 1000
    stamped = bool((a[:, 1] != a[:, 2]).all())
    print(f"browser path ({model or 'shipped model'}): {len(a)} frames in {span:.1f} s: {(len(a) - 1) / span:.1f} fps "
          f"sustained; grab → displayed latency p50 {np.percentile(e2e, 50):.0f} ms, p95 "
          f"{np.percentile(e2e, 95):.0f} ms (stamps carried through: {stamped}); face found in "
          f"{a[:, 4].mean() * 100:.0f} % of frames")

    def pct(v: np.ndarray) -> str:
        v = v[np.isfinite(v)]
        return f"p50 {np.percentile(v, 50):5.1f} / p95 {np.percentile(v, 95):5.1f} ms" if len(v) else "n/a"

    print(f"  webcam {size[0]}x{size[1]}, a grab every {web_live.STREAM_EVERY * 1000:.0f} ms: {grabs} grabs posted, "
          f"{len(a)} animated ({100 * (1 - len(a) / max(grabs, 1)):.0f} % replaced by a newer one while the "
          f"server was busy)")
    print(f"  grab → handler start (encode, post, wait for the frame in progress, decode): {pct(a[:, 2] - a[:, 1])}")
    for i, name in enumerate(["track", "generate + compose", "watermark", "encode JPEG"]):
        if a.shape[1] > 5 + i:
            print(f"  handler: {name:<20} {pct(a[:, 5 + i])}")
    print(f"  handler (whole)                {pct(a[:, 3] - a[:, 2])}")
    print(f"  handler end → shown in the page (event stream, page update): {pct(a[:, 0] - a[:, 3])}")
    print(f"  CPU over the {wall:.0f} s (% of one core; ms per animated frame):")
    total = 0.0
    for name in sorted(cpu1):
        used = cpu1[name] - cpu0.get(name, 0.0)
        total += used
        if used >= 0.01:
            print(f"    {name:<44} {100 * used / wall:4.0f} %  {1000 * used / len(a):6.1f} ms")
    print(f"    {'all':<44} {100 * total / wall:4.0f} %  {1000 * total / len(a):6.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file or training run (default: the shipped model)")
    ap.add_argument("--path", choices=["cli", "browser", "both"], default="both")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each measurement (default 30)")
    ap.add_argument("--minutes", type=float, help="CLI path: run this long instead (RSS over a long session)")
    ap.add_argument("--rss-every", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    ap.add_argument("--stream-every", type=float, help="browser path: seconds between webcam grabs (default: the "
                    "page's, talkinghead.web.live.STREAM_EVERY)")
    ap.add_argument("--camera", help="browser path: webcam size WxH to ask for and track at (default: the page's)")
    ap.add_argument("--upsample", type=int, help="browser path: the live detector's upsampling (default: the page's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
        if args.path in ("cli", "both"):
            seconds = args.minutes * 60 if args.minutes else args.seconds
            cli_path(args.model, seconds, args.rss_every, Path(tmp))
        if args.path in ("browser", "both"):
            browser_path(args.model, args.seconds, Path(tmp), args.stream_every, args.camera, args.upsample)


if __name__ == "__main__":
    main()
