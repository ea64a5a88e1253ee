"""Live animation: the streaming API (dropping, latency, face leaving), `talkinghead live` (camera failure, a
recording from a paced video, Ctrl-C), and the web page's Live tab in headless Chromium with a fake camera."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from talkinghead.data.examples import astronaut_video
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.inference.live import (
    LatencyStats,
    LiveRenderer,
    Recorder,
    live_threads,
    live_tracker,
    paced,
    run_session,
    with_notice,
)
from talkinghead.io import probe_video, read_video
from talkinghead.provenance.marking import marking
from tests.conftest import write_frames

ROOT = Path(__file__).resolve().parents[1]


def _rate(path: Path) -> float:
    """The video stream's frame rate as written (probe_video's average rate is short by one frame's duration
    on very short files)."""
    import av

    with av.open(str(path)) as c:
        return float(c.streams.video[0].base_rate)


@pytest.fixture(scope="module")
def anim(micro_model: Path, astronaut_png: Path) -> Animator:
    live_threads()
    a = Animator(micro_model, device="cpu")
    a.set_source([astronaut_png], progress=False)
    return a


@pytest.fixture(scope="module")
def drive_frames(astronaut_frames) -> list[np.ndarray]:
    return astronaut_frames[0]


def test_latency_percentiles_in_bounded_memory() -> None:
    s = LatencyStats()
    for ms in range(1, 101):
        s.add(ms / 1000)
    assert s.n == 100 and s.percentile(50) == pytest.approx(0.050, abs=0.001)
    assert s.percentile(95) == pytest.approx(0.095, abs=0.001) and s.max == pytest.approx(0.1)
    s.add(60.0)  # beyond the histogram: counted in the last bin, memory unchanged
    assert s.counts.shape == (LatencyStats.BINS + 1,) and s.percentile(100) == pytest.approx(60.0)


def test_stream_drops_stale_frames_under_a_slow_consumer(anim: Animator, drive_frames) -> None:
    frames = drive_frames[:30]
    out = []
    with anim.stream(paced(frames, fps=100.0), fps=100.0) as stream:
        for lf in stream:
            out.append(lf)
            time.sleep(0.06)  # the consumer takes ~6 source frames' time per frame
    stats = stream.stats()
    assert stats.received == 30 and stats.dropped > 10
    assert stats.frames == len(out) and stats.frames + stats.dropped == stats.received  # nothing queued or lost
    indices = [lf.index for lf in out]
    assert indices == sorted(indices) and indices[-1] == 29  # always the newest frame; the last one is animated
    assert out[-1].dropped == stats.dropped
    assert all(0 < lf.latency < 10 for lf in out) and 0 < stats.p50 <= stats.p95
    assert out[0].image.shape == (256, 256, 3) and out[0].image.dtype == np.uint8


def test_stream_keeps_every_frame_when_the_consumer_keeps_up(anim: Animator, drive_frames) -> None:
    t0 = time.perf_counter()
    source = ((f, t0 + i) for i, f in enumerate(drive_frames[:5]))  # caller-supplied capture times
    taken = threading.Semaphore(0)

    def lockstep():  # the next frame comes once the consumer has its output: nothing to drop
        for item in source:
            yield item
            assert taken.acquire(timeout=60)

    out = []
    with anim.stream(lockstep(), fps=25.0) as stream:
        for lf in stream:
            out.append(lf)
            taken.release()
    assert [lf.index for lf in out] == [0, 1, 2, 3, 4] and stream.dropped == 0
    assert out[1].captured == pytest.approx(t0 + 1)


def test_live_reads_blinks_from_the_landmarks_before_smoothing(anim: Animator, drive_frames, monkeypatch) -> None:
    smoothed, plain = live_tracker(1.0, 25.0), live_tracker(0.0, 25.0)
    moved = 0.0
    for frame in drive_frames[:12]:
        got, raw = smoothed.update(frame).landmarks, plain.update(frame).landmarks
        assert got is not None and raw is not None
        assert np.array_equal(smoothed.raw_landmarks, raw)  # the filter's input, not its output
        moved = max(moved, float(np.abs(got - raw).max()))
    assert moved > 0.5  # the clip moves, so the filter trails it
    renderer = LiveRenderer(anim, AnimateOptions(progress=False), fps=25.0)
    seen: list[tuple[np.ndarray | None, np.ndarray | None]] = []
    parts = renderer.step.parts
    monkeypatch.setattr(renderer.step, "parts", lambda lmk, frame, eyes=None: seen.append((lmk, eyes)) or
                        parts(lmk, frame, eyes))
    for frame in drive_frames[:3]:
        renderer(frame)
    assert len(seen) == 3 and all(e is not None for _, e in seen)
    assert np.array_equal(seen[-1][1], renderer.tracker.raw_landmarks)
    assert not np.array_equal(seen[-1][0], seen[-1][1])  # the pose is smoothed, the blink reading is not


def test_face_leaving_holds_the_last_pose_and_returning_resumes(anim: Animator, drive_frames, faceless_frames) -> None:
    import cv2

    noise = [cv2.resize(f, drive_frames[0].shape[1::-1]) for f in faceless_frames[:6]]
    seq = drive_frames[:8] + noise + drive_frames[8:16]
    r = LiveRenderer(anim, AnimateOptions(progress=False), fps=25.0)
    outs = [r(f) for f in seq]
    faces = [face for _, face in outs]
    assert faces[:8] == [True] * 8 and faces[8:14] == [False] * 6 and all(faces[15:])
    held = outs[7][0]
    for img, _ in outs[8:14]:  # the pose before the face left, unchanged
        assert np.array_equal(img, held)
    assert r.without_face == 6
    back = [img for img, _ in outs[15:]]
    assert any(not np.array_equal(img, held) for img in back)  # follows the face again
    shown = with_notice(held)
    assert shown.shape == held.shape and not np.array_equal(shown[-10:], held[-10:]) and np.array_equal(
        shown[:100], held[:100])


def test_recording_fills_dropped_frames_and_is_marked(anim: Animator, drive_frames, tmp_path: Path) -> None:
    from talkinghead.provenance.verify import verify_file

    marker = marking(True, True, model=anim.bundle)
    rec = Recorder(tmp_path / "rec.mp4", 25.0, marker)
    stream = anim.stream(paced(drive_frames[:20], fps=2000.0), fps=50.0, mark=marker)  # faster than any render
    result = run_session(stream, rec)
    assert result.stats.dropped > 0 and result.recorded_frames == 20
    info = probe_video(result.recording)
    assert info.n_frames == 20 and info.fps == pytest.approx(25.0)
    v = verify_file(result.recording)
    assert v.synthetic and v.watermarked and v.manifest_marked


# -- the command -------------------------------------------------------------------------------------------------
def test_camera_that_cannot_be_opened_exits_2_with_one_line(astronaut_png: Path, capfd) -> None:
    from talkinghead.cli import main

    code = main(["live", "--source", str(astronaut_png), "--camera", "97"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("talkinghead: error: cannot open camera 97"), err


def test_live_driving_records_a_marked_mp4_at_the_video_frame_rate(micro_model: Path, astronaut_png: Path,
                                                                     drive_frames, tmp_path: Path, capsys) -> None:
    from talkinghead.cli import main
    from talkinghead.provenance.verify import verify_file

    driving = write_frames(tmp_path / "drive.mp4", drive_frames[:30], fps=30.0)
    out = tmp_path / "live.mp4"
    code = main(["live", "--source", str(astronaut_png), "--driving", str(driving), "--out", str(out),
                 "--model", str(micro_model), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "fps, latency p50" in printed and "p95" in printed and "dropped" in printed
    info = probe_video(out)
    assert _rate(out) == 30 and info.fps == pytest.approx(30.0) and info.n_frames == 30 and (info.width, info.height) == (256, 256)
    v = verify_file(out)
    assert v.synthetic and v.watermarked and v.manifest_marked
    frames, _ = read_video(out)
    assert len(frames) == 30


def test_ctrl_c_stops_cleanly_with_the_recording_finalised(micro_model: Path, astronaut_png: Path, drive_frames,
                                                           tmp_path: Path) -> None:
    from talkinghead.provenance.verify import verify_file

    driving = write_frames(tmp_path / "long.mp4", drive_frames * 8)  # 16 s at 25 fps
    out = tmp_path / "live.mp4"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead", "live", "--source", str(astronaut_png),
                             "--driving", str(driving), "--out", str(out), "--model", str(micro_model),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # printed when frames start flowing
    assert "Ctrl-C to stop" in line, line
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "stopped by Ctrl-C" in stdout and "Traceback" not in stderr
    info = probe_video(out)
    assert _rate(out) == 25 and 10 <= info.n_frames < 400
    assert verify_file(out).synthetic


# -- the web page's Live tab in a real browser with a fake camera ------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
LIVE_SCREENSHOT_ENV = "TALKINGHEAD_LIVE_SCREENSHOT"


def _decode_data_url(url: str) -> np.ndarray:
    import base64

    import cv2

    assert url.startswith("data:image/jpeg;base64,"), url[:40]
    buf = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_live_tab_streams_animated_frames_from_a_fake_camera(tmp_path: Path) -> None:
    """Chromium's fake camera plays a y4m made from a moving face; the Live tab must return animated frames
    with a face in them that change as the driving face moves, loading nothing from another host."""
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (run .ci/setup-browser)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -r requirements.lock)")
    pytest.importorskip("talkinghead.web.app", reason="the web page needs gradio")
    from talkinghead.faces.detect import FaceDetector
    from talkinghead.inference.live import write_y4m
    from talkinghead.web import Limits, serve
    from tests.test_web import CHROMIUM_ARGS, _free_port

    frames, _ = astronaut_video(seconds=3.0, fps=25.0, size=480)
    y4m = write_y4m(tmp_path / "camera.y4m", [np.pad(f, ((0, 0), (80, 80), (0, 0)), mode="edge") for f in frames])
    port = _free_port()
    # the shipped model: a random one would not draw a face for the detector to find
    demo = serve(port=port, limits=Limits(), device="cpu", temp_dir=tmp_path / "web", block=False)
    server = f"http://127.0.0.1:{port}"
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"]
    try:
        with sync_api.sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                        headless=True, args=args,
                                                        viewport={"width": 1280, "height": 900})
            try:
                tab = ctx.new_page()
                tab.set_default_timeout(60_000)
                urls: list[str] = []
                tab.on("request", lambda r: urls.append(r.url))
                console: list[str] = []
                tab.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                tab.on("pageerror", lambda e: console.append(f"page error: {e}"))
                tab.goto(server + "/")
                tab.get_by_role("tab", name="Live").click()
                camera = tab.locator("#live-camera")
                camera.get_by_text("Click to Access Webcam").click()
                # press record once the camera plays (on a loaded machine an earlier press may start nothing)
                tab.wait_for_function("(() => { const v = document.querySelector('#live-camera video');"
                                      " return !!v && v.videoWidth > 0; })()")
                record = camera.get_by_role("button", name="capture photo")
                record.click()
                got: list[np.ndarray] = []
                tracked: list[bool] = []
                seen: set[str] = set()
                clicks, last_click = 1, time.time()
                deadline = time.time() + 120
                while len(got) < 8 and time.time() < deadline:
                    meta = tab.locator("#live-output .live-meta")
                    if meta.count() and meta.get_attribute("data-frame") not in seen:
                        seen.add(meta.get_attribute("data-frame") or "")
                        tracked.append(meta.get_attribute("data-face") == "1")
                        got.append(_decode_data_url(tab.locator("#live-frame").get_attribute("src") or ""))
                    elif not got and time.time() - last_click > 20 and camera.locator('[title="start recording"]').count():
                        record.click()  # still not recording: press record again, as a user would
                        clicks, last_click = clicks + 1, time.time()
                    time.sleep(0.3)
                if len(got) < 8:
                    state = [t for t in ("start recording", "stop recording", "spinner")
                             if camera.locator(f'[title="{t}"]').count()]
                    pytest.fail(f"only {len(got)} animated frames arrived after {clicks} record press(es); camera button: "
                                f"{state}; output: {tab.locator('#live-output').inner_text()!r}; "
                                f"toasts: {tab.locator('.toast-body').all_inner_texts()}; browser console: {console[-10:]}")
                # the page asks for small grabs (the fake camera plays 640x480) and the face is tracked in them
                size = tab.evaluate("(() => { const v = document.querySelector('#live-camera video');"
                                    " return [v.videoWidth, v.videoHeight]; })()")
                assert size == [320, 240], size
                assert sum(tracked) >= 0.75 * len(tracked), f"driving face found in {sum(tracked)} of {len(tracked)}"
                assert "frames/s" in tab.locator("#live-output").inner_text()
                shot = os.environ.get(LIVE_SCREENSHOT_ENV)
                if shot:
                    tab.screenshot(path=shot, full_page=True)
            finally:
                ctx.close()
    finally:
        demo.close()
    detector = FaceDetector()
    with_face = sum(bool(detector.detect(img)) for img in got)
    assert with_face >= 0.75 * len(got), f"a face in {with_face} of {len(got)} frames"
    diffs = [float(np.abs(a.astype(np.int16) - got[0]).mean()) for a in got[1:]]
    assert max(diffs) > 3.0, diffs  # the portrait moves with the driving face
    foreign = [u for u in urls if not u.startswith((server, "data:", "blob:"))]
    assert not foreign, f"requests to other hosts: {foreign}"


def test_one_live_session_at_a_time_busy_message_and_release(micro_model: Path) -> None:
    pytest.importorskip("talkinghead.web.app", reason="the web page needs gradio")
    import gradio as gr

    from talkinghead.data.examples import astronaut
    from talkinghead.models.bundle import load_model
    from talkinghead.web import Limits
    from talkinghead.web import live as web_live

    class Req:
        def __init__(self, key: str) -> None:
            self.session_hash = key

    service = web_live.LiveService(load_model(micro_model), Limits(live_sessions=1), "cpu", lambda _p: [astronaut()])
    frame, _ = astronaut_video(seconds=0.04, fps=25.0, size=256)
    html_a = service.frame(frame[0], None, None, Req("a"))
    assert 'src="data:image/jpeg;base64,' in html_a and 'data-face="1"' in html_a
    with pytest.raises(gr.Error, match="Someone else is using the live mode"):
        service.frame(frame[0], None, None, Req("b"))
    service.unload(Req("a"))  # visitor a closed the tab
    assert "data:image/jpeg" in service.frame(frame[0], None, 1.0, Req("b"))
    service.sessions["b"].last_seen -= web_live.IDLE_S + 1  # b stopped sending frames
    assert "data:image/jpeg" in service.frame(frame[0], None, None, Req("c"))
    assert set(service.sessions) == {"c"}


def test_live_tab_tracks_a_small_face_in_a_large_webcam_frame(micro_model: Path) -> None:
    """A browser that ignores the page's 320x240 request sends 640x480: the server scales it down to MAX_SIDE,
    and the live detector's upsampling still finds a face a quarter of the frame high (~60 px after scaling,
    below the plain detector's ~80 px); the handler reports its stages' times to the page."""
    pytest.importorskip("talkinghead.web.app", reason="the web page needs gradio")
    from talkinghead.data.examples import astronaut
    from talkinghead.models.bundle import load_model
    from talkinghead.web import Limits
    from talkinghead.web import live as web_live

    class Req:
        session_hash = "small-face"

    frames, _ = astronaut_video(seconds=0.2, fps=25.0, size=480)
    frame = np.pad(frames[0], ((0, 0), (80, 80), (0, 0)), mode="edge")  # 640x480, the benchmark's framing
    assert frame.shape == (480, 640, 3) and web_live.MAX_SIDE == 320
    service = web_live.LiveService(load_model(micro_model), Limits(), "cpu", lambda _p: [astronaut()])
    html = service.frame(frame, None, None, Req())
    assert 'data-face="1"' in html, "no face found in the scaled-down webcam frame"
    session = service.sessions["small-face"]
    assert session.renderer.tracker.detector.upsample == web_live.DETECT_UPSAMPLE == 1
    stages = [float(v) for v in html.split('data-stages="')[1].split('"')[0].split(",")]
    assert len(stages) == 4 and all(v >= 0 for v in stages) and stages[1] > 0  # track, generate, mark, encode


def test_live_threads_leave_numpy_blas_single_threaded() -> None:
    """OpenBLAS's idle worker thread spins between the live path's small matrix products (it took ~55 % of a
    core from Chromium in the browser benchmark): live_threads sets every loaded OpenBLAS to one thread."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy  # noqa: F401  (its OpenBLAS is loaded)

    with threadpoolctl.threadpool_limits(2, user_api="blas"):  # as a 2-core machine starts
        assert live_threads() >= 1
        blas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
        assert blas and all(i["num_threads"] == 1 for i in blas), blas
