"""Invisible, per-video provenance watermark: a keyed spread-spectrum pattern added to the luma of every frame.

Method (a numpy/OpenCV implementation of our own, chosen by measurement, see ``benchmarks/watermark_robustness.py``)

* **Payload**: 64 bits = tool code (8) + tool version (12) + random per-video id (28) + CRC-16 (16).
  The bits are protected by a rate-1/2 convolutional code (constraint length 7, soft Viterbi decoding),
  giving 140 coded bits, which are XOR-whitened with a keyed sequence.
* **Pattern**: a tile of ``32 x 32`` *chips*, each chip a ``c x c`` pixel square whose size ``c`` follows the
  picture's size (:func:`chip_size`: 2 up to 299 px, 3 at 384 px, 5 at 720p), so the pattern scales with the
  picture. 256 chips of the tile are a known *pilot* (for synchronisation), the 768 others each carry one coded
  bit (every coded bit 5 or 6 times, at keyed random places), all multiplied by a keyed ±1 chip sequence.
  The tile repeats over the whole frame, so any crop that keeps a part of it keeps every bit.
* **Embedding**: the ±1 pattern, its chip edges smoothed a little, times ``strength`` (2.6 grey levels RMS, about
  39.8 dB PSNR; weaker next to black and white, where it would clip) is added equally to R, G and B, i.e. to
  the luma only: colours are kept, and H.264's 4:2:0 chroma subsampling does not touch it.
* **Detection**: the luma is high-pass filtered and normalised by its local energy, then *folded* modulo the
  tile period (every tile copy summed into one tile-sized array) and summed over frames: this is the per-video
  soft combination. The tile's offset (unknown after a crop) is found by FFT cross-correlation with the pilot;
  the coded bits' soft values are read at that offset, Viterbi-decoded, and the payload is accepted only when
  the tool code and CRC check out *and* the pilot correlation is far above chance.

The key is public on purpose: anyone can check a video for the mark. It is a disclosure aid, not a secret.
Frames are ``(H, W, 3) uint8`` RGB throughout.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

KEY = b"talkinghead/provenance/watermark/v1"
"""Public key that seeds every pseudo-random choice; changing it changes the mark (and the detector)."""

TOOL_NAME = "talkinghead"
TOOL_CODES: dict[str, int] = {TOOL_NAME: 0xA7}
"""Tool name → 8-bit code carried in the payload (a code not listed here never decodes)."""

PAYLOAD_BITS = 64
ID_BITS = 28
TILE = 32
"""Tile side in chips."""
N_PILOT = 256
"""Pilot chips per tile (known ±1 values, used to find the tile's offset)."""
DEFAULT_STRENGTH = 2.6
"""Root-mean-square change of each RGB value (0-255 scale) before rounding: about 39.8 dB PSNR."""

_K = 7  # convolutional code constraint length
_G = (0o171, 0o133)  # generator polynomials (the standard rate-1/2, K=7 pair)
N_CODED = 2 * (PAYLOAD_BITS + _K - 1)

# Tuning, all measured with benchmarks/watermark_robustness.py (H.264 crf 23/28 at 256, 384 and 720 px):
CHIP_DIV = 200  # chip side = round(1 + min(H, W) / CHIP_DIV) ...
CHIP_MIN = 2  # ... at least 2 px, so a 0.5x downscale keeps the chips
SMOOTH = 0.35  # Gaussian blur of the chip pattern, in chips (sigma = SMOOTH * c)
RES_SIGMA = 0.5  # detector high-pass: luma minus its Gaussian blur of sigma RES_SIGMA * c
RES_ENERGY = 1.0  # ... divided by its local RMS over a (2 * RES_ENERGY * c + 1)² box
RES_CLIP = 3.0  # ... and clipped to ±RES_CLIP (limits strong edges)
SYNC_Z_MIN = 6.0
"""Smallest pilot correlation (in robust standard deviations over all offsets) that can make a detection. The
best chance peak over all offsets is about 4-5 on unmarked videos (at most 4.6 over 147 real clips); a marked
video also needs its tool code and CRC to check out (a 2**-24 chance on unmarked content)."""


# --------------------------------------------------------------------------------------------------------- payload


def _crc16(bits: np.ndarray) -> int:
    """CRC-16/CCITT (poly 0x1021, init 0xFFFF) of a bit array (MSB first), XORed with a keyed constant."""
    reg = 0xFFFF
    for b in bits.tolist():
        top = ((reg >> 15) & 1) ^ int(b)
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= 0x1021
    return reg ^ int.from_bytes(hashlib.sha256(KEY + b"/crc").digest()[:2], "big")


def _int_bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def _bits_int(bits: np.ndarray) -> int:
    out = 0
    for b in bits.tolist():
        out = (out << 1) | int(b)
    return out


def _parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3rc1"`` → ``(1, 2, 3)``: the leading digits of the first three dot-separated parts (0 if none)."""
    parts = [int(m.group()) if (m := re.match(r"\d+", piece)) else 0 for piece in version.split(".")[:3]]
    return (parts + [0, 0, 0])[0], (parts + [0, 0, 0])[1], (parts + [0, 0, 0])[2]


@dataclass(frozen=True)
class Payload:
    """What the mark says: which tool made the video, its version, and a random id for this one video.

    ``version`` components are stored in 4 bits each (values above 15 are stored as 15).
    """

    tool: str
    version: tuple[int, int, int]
    video_id: int
    """Random per-video id, ``0 <= video_id < 2**28``."""

    @classmethod
    def new(cls, version: str | None = None, tool: str = TOOL_NAME) -> Payload:
        """A payload for a new video with a fresh random id (``version`` defaults to ``talkinghead.__version__``)."""
        if version is None:
            from talkinghead import __version__ as version
        if tool not in TOOL_CODES:
            raise ValueError(f"unknown tool {tool!r}: known tools are {sorted(TOOL_CODES)}")
        major, minor, patch = (min(v, 15) for v in _parse_version(version))
        return cls(tool=tool, version=(major, minor, patch), video_id=secrets.randbits(ID_BITS))

    @property
    def version_str(self) -> str:
        return ".".join(str(v) for v in self.version)

    @property
    def id_hex(self) -> str:
        """The id as 7 hex digits (how it is shown to users)."""
        return f"{self.video_id:07x}"

    def __str__(self) -> str:
        return f"{self.tool} {self.version_str} id {self.id_hex}"

    def to_bits(self) -> np.ndarray:
        """The 64 payload bits, ``(64,) uint8`` of 0/1: code(8) version(4+4+4) id(28) crc16(16)."""
        if self.tool not in TOOL_CODES:
            raise ValueError(f"unknown tool {self.tool!r}")
        if not 0 <= self.video_id < 2**ID_BITS:
            raise ValueError(f"video_id must be in [0, 2**{ID_BITS}), got {self.video_id}")
        head = _int_bits(TOOL_CODES[self.tool], 8)
        for v in self.version:
            head += _int_bits(min(max(int(v), 0), 15), 4)
        head += _int_bits(self.video_id, ID_BITS)
        body = np.array(head, dtype=np.uint8)
        return np.concatenate([body, np.array(_int_bits(_crc16(body), 16), dtype=np.uint8)])

    @classmethod
    def from_bits(cls, bits: np.ndarray | Iterable[int]) -> Payload | None:
        """Parse 64 bits; ``None`` when their length, tool code or CRC is wrong (i.e. not a valid mark)."""
        arr = np.asarray(list(bits) if not isinstance(bits, np.ndarray) else bits).astype(np.uint8).ravel()
        if arr.size != PAYLOAD_BITS or np.any(arr > 1):
            return None
        body, crc = arr[:48], _bits_int(arr[48:])
        if _crc16(body) != crc:
            return None
        code = _bits_int(body[:8])
        tools = {v: k for k, v in TOOL_CODES.items()}
        if code not in tools:
            return None
        version = (_bits_int(body[8:12]), _bits_int(body[12:16]), _bits_int(body[16:20]))
        return cls(tool=tools[code], version=version, video_id=_bits_int(body[20:48]))


# ---------------------------------------------------------------------------------------- convolutional code


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    out = np.zeros_like(x)
    while np.any(x):
        out ^= x & 1
        x >>= 1
    return out


@lru_cache(maxsize=1)
def _trellis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each next state ``ns`` (64): its two predecessor states, the input bit, and the 2 outputs per branch.

    The register is ``(u << 6) | s``; the next state is ``register >> 1``.
    """
    n_states = 1 << (_K - 1)
    ns = np.arange(n_states)
    u = ns >> (_K - 2)
    prev = np.stack([((ns & (n_states // 2 - 1)) << 1) | b for b in (0, 1)], axis=1)  # (64, 2)
    reg = (u[:, None] << (_K - 1)) | prev  # (64, 2)
    outs = np.stack([_parity(reg & g) for g in _G], axis=-1)  # (64, 2, 2)
    return prev, u, outs


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Rate-1/2 K=7 convolutional encoding with a zero tail: ``(n,)`` 0/1 → ``(2 * (n + 6),)`` 0/1 uint8."""
    state = 0
    out: list[int] = []
    for b in list(np.asarray(bits).tolist()) + [0] * (_K - 1):
        reg = (int(b) << (_K - 1)) | state
        out += [bin(reg & g).count("1") & 1 for g in _G]
        state = reg >> 1
    return np.array(out, dtype=np.uint8)


def viterbi_decode(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi for :func:`conv_encode`.

    ``soft``: ``(2 * (n + 6),)`` float, positive for a coded 0, negative for a 1 (any scale). Returns ``(n,)`` 0/1.
    """
    prev, u, outs = _trellis()
    n_states = prev.shape[0]
    steps = soft.size // 2
    sym = 1.0 - 2.0 * outs  # (64, 2, 2) ±1 expected symbols
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    choices = np.zeros((steps, n_states), dtype=np.uint8)
    for t in range(steps):
        y = soft[2 * t : 2 * t + 2]
        cand = metric[prev] + sym @ y  # (64, 2)
        pick = np.argmax(cand, axis=1)
        choices[t] = pick
        metric = cand[np.arange(n_states), pick]
    state = 0  # the tail drives the encoder back to state 0
    decoded = np.zeros(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        decoded[t] = u[state]
        state = prev[state, choices[t, state]]
    return decoded[: steps - (_K - 1)]


# ----------------------------------------------------------------------------------------------- the pattern


@dataclass(frozen=True)
class _Layout:
    pilot_idx: np.ndarray  # (N_PILOT,) chip indices into the flattened tile
    data_idx: np.ndarray  # (TILE² - N_PILOT,)
    data_bit: np.ndarray  # (TILE² - N_PILOT,) coded-bit index carried by each data chip
    chip_sign: np.ndarray  # (TILE²,) ±1 float32
    whiten: np.ndarray  # (N_CODED,) 0/1


@lru_cache(maxsize=1)
def _layout() -> _Layout:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(KEY).digest()[:8], "big"))
    perm = rng.permutation(TILE * TILE)
    data_idx = perm[N_PILOT:]
    return _Layout(
        pilot_idx=perm[:N_PILOT],
        data_idx=data_idx,
        data_bit=np.arange(data_idx.size) % N_CODED,
        chip_sign=rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=TILE * TILE),
        whiten=rng.integers(0, 2, N_CODED).astype(np.uint8),
    )


def chip_size(height: int, width: int) -> int:
    """Chip side in pixels for a picture of that size: ``round(1 + min(H, W) / 200)``, at least 2.

    2 up to 299 px, 3 up to 499 px, 5 at 720p, 6 at 1080p (measured best under H.264 at 256, 384 and 720 px).
    """
    return max(CHIP_MIN, int(round(1 + min(height, width) / CHIP_DIV)))


def _tile_chips(coded: np.ndarray | None) -> np.ndarray:
    """``(TILE, TILE)`` float32 ±1 chip values; with ``coded=None`` only the pilot (data chips 0)."""
    lay = _layout()
    tile = np.zeros(TILE * TILE, dtype=np.float32)
    tile[lay.pilot_idx] = 1.0
    if coded is not None:
        tile[lay.data_idx] = 1.0 - 2.0 * (coded ^ lay.whiten)[lay.data_bit]
    return (tile * lay.chip_sign).reshape(TILE, TILE)


def _smooth(pattern: np.ndarray, c: int) -> np.ndarray:
    """Soften the chip edges (less visible, fewer high frequencies for codecs to drop); keeps RMS 1."""
    sigma = SMOOTH * c
    out = cv2.GaussianBlur(pattern, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    return out / max(float(np.sqrt(np.mean(out**2))), 1e-6)


@lru_cache(maxsize=8)
def _pattern_cached(height: int, width: int, c: int, bits_key: bytes) -> np.ndarray:
    coded = conv_encode(np.frombuffer(bits_key, dtype=np.uint8))
    period = TILE * c
    tile = np.kron(_tile_chips(coded), np.ones((c, c), dtype=np.float32))
    # smooth with wrap-around on a 3x3 tiling so the tile stays seamless
    tile = _smooth(np.tile(tile, (3, 3)), c)[period : 2 * period, period : 2 * period]
    reps = (math.ceil(height / period), math.ceil(width / period))
    full = np.tile(tile, reps)[:height, :width]
    full.setflags(write=False)
    return full


def watermark_pattern(height: int, width: int, payload: Payload) -> np.ndarray:
    """The ``(H, W)`` float32 unit-RMS pattern for ``payload`` (cached: the same for every frame of a video)."""
    return _pattern_cached(height, width, chip_size(height, width), payload.to_bits().tobytes())


def _luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB uint8 frame: ``(H, W)`` uint8."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


# Strength by luma value: less room next to black or white, where the change would be clipped.
_ROOM = np.clip(np.minimum(np.arange(256.0), 255.0 - np.arange(256.0)) / 12.0, 0.25, 1.0).astype(np.float32)


def _mask(y: np.ndarray) -> np.ndarray:
    """Strength map ``(H, W)`` float32 with mean square 1, from the ``(H, W)`` uint8 luma: lower next to black
    or white. (A texture-adaptive mask was measured too: it cost 10-20% of the robustness to H.264.)"""
    hist = cv2.calcHist([y], [0], None, [256], [0, 256]).ravel()
    rms = math.sqrt(float(hist @ (_ROOM.astype(np.float64) ** 2)) / max(float(hist.sum()), 1.0))
    return cv2.LUT(y, _ROOM) * np.float32(1.0 / max(rms, 1e-6))


def embed(frame: np.ndarray, payload: Payload, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Return a watermarked copy of ``frame``.

    frame: ``(H, W, 3) uint8`` RGB, any size (at least ``64 x 64`` is advised). ``strength``: RMS change per
    RGB value on the 0-255 scale (the default gives about 39.8 dB PSNR). Returns ``(H, W, 3) uint8`` RGB.
    The pattern is cached per (size, payload), so marking the frames of one video costs a few ms each.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    h, w = frame.shape[:2]
    # rint(frame + delta) == frame + rint(delta) for integer frames: round once, add with saturation
    delta = np.rint(watermark_pattern(h, w, payload) * _mask(_luma(frame)) * np.float32(strength))
    up = np.minimum(np.maximum(delta, 0.0), 255.0).astype(np.uint8)
    down = np.minimum(np.maximum(-delta, 0.0), 255.0).astype(np.uint8)
    frame = np.ascontiguousarray(frame)
    return cv2.subtract(cv2.add(frame, cv2.merge([up, up, up])), cv2.merge([down, down, down]))


# ----------------------------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Detection:
    """Result of looking for the mark in one picture or in the frames of one video.

    ``confidence`` in [0, 1]: the estimated probability that every decoded payload bit is right (0 when
    unmarked). ``sync_z``: pilot correlation in robust standard deviations (about 4-5 on unmarked content).
    """

    marked: bool
    payload: Payload | None
    confidence: float
    frames_used: int
    sync_z: float = 0.0
    chip: int = 0


def _residual(frame: np.ndarray, c: int) -> np.ndarray:
    """High-passed luma divided by its local energy: ``(H, W)`` float32, roughly unit variance, clipped to ±3."""
    y = _luma(frame).astype(np.float32)
    r = y - cv2.GaussianBlur(y, (0, 0), sigmaX=RES_SIGMA * c)
    k = 2 * int(round(RES_ENERGY * c)) + 1
    energy = np.sqrt(np.maximum(cv2.blur(r * r, (k, k)), 0.0)) + 0.75
    return np.clip(r / energy, -RES_CLIP, RES_CLIP)


def _fold(r: np.ndarray, period: int) -> np.ndarray:
    """Sum ``r`` modulo ``period`` in both axes: ``(period, period)`` float64."""
    h, w = r.shape
    ph, pw = -h % period, -w % period
    if ph or pw:
        r = np.pad(r, ((0, ph), (0, pw)))
    hh, ww = r.shape
    return r.reshape(hh // period, period, ww // period, period).sum(axis=(0, 2), dtype=np.float64)


@lru_cache(maxsize=8)
def _pilot_fft(c: int) -> np.ndarray:
    pilot = np.kron(_tile_chips(None), np.ones((c, c), dtype=np.float32)).astype(np.float64)
    return np.conj(np.fft.rfft2(pilot))


def _q(x: float) -> float:
    """Gaussian tail probability P(N(0, 1) > x)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _decode_confidence(data: np.ndarray, bits: np.ndarray, sync_z: float, n_offsets: int) -> float:
    """Estimated probability that the decoded payload is right, from the measured signal-to-noise ratio.

    ``data``: soft value of every data chip, de-whitened (positive = coded 0). The SNR per coded bit ``z_b``
    is measured against the re-encoded codeword; the Viterbi error probability is bounded by the code's free
    distance (10, with 11 such paths per step, 64 steps), and the chance of a false pilot peak by a union
    bound over every offset tried.
    """
    lay = _layout()
    aligned = data * (1.0 - 2.0 * conv_encode(bits).astype(np.float64))[lay.data_bit]
    mu, sigma = float(aligned.mean()), float(aligned.std()) + 1e-12
    if mu <= 0:
        return 0.0
    z_b = mu / sigma * math.sqrt(aligned.size / N_CODED)
    p_decode = min(1.0, PAYLOAD_BITS * 11 * _q(math.sqrt(10.0) * z_b))
    p_sync = min(1.0, n_offsets * _q(sync_z))
    return max(0.0, (1.0 - p_decode) * (1.0 - p_sync))


def _decode_folded(folded: np.ndarray, c: int, frames: int) -> Detection:
    """Find the tile offset in a ``(TILE * c, TILE * c)`` folded residual sum, then decode the payload there."""
    corr = np.fft.irfft2(np.fft.rfft2(folded) * _pilot_fft(c), s=folded.shape)
    med = float(np.median(corr))
    spread = 1.4826 * float(np.median(np.abs(corr - med))) + 1e-12
    z = (corr - med) / spread
    best: Detection | None = None
    lay = _layout()
    # the best few offsets (a crop can put the true one just below a chance peak when the mark is weak)
    order = np.argsort(z, axis=None)[::-1][:3]
    for flat in order:
        dy, dx = np.unravel_index(int(flat), z.shape)
        zval = float(z[dy, dx])
        aligned = np.roll(folded, (-int(dy), -int(dx)), axis=(0, 1))
        chips = aligned.reshape(TILE, c, TILE, c).sum(axis=(1, 3)).ravel() * lay.chip_sign
        noise = float(np.sqrt(np.mean(chips[lay.data_idx] ** 2))) + 1e-12
        data = chips[lay.data_idx] / noise
        soft = np.bincount(lay.data_bit, weights=data, minlength=N_CODED)
        soft = soft * (1.0 - 2.0 * lay.whiten)  # undo the whitening: positive means coded 0
        bits = viterbi_decode(soft)
        payload = Payload.from_bits(bits)
        if payload is None:
            continue
        conf = _decode_confidence(chips[lay.data_idx] * (1.0 - 2.0 * lay.whiten[lay.data_bit]), bits, zval, 3 * z.size)
        marked = zval >= SYNC_Z_MIN
        det = Detection(marked=marked, payload=payload if marked else None, confidence=conf if marked else 0.0,
                        frames_used=frames, sync_z=zval, chip=c)
        if best is None or (det.marked, det.sync_z) > (best.marked, best.sync_z):
            best = det
        if marked:
            break
    if best is None:
        best = Detection(marked=False, payload=None, confidence=0.0, frames_used=frames, sync_z=float(z.max()), chip=c)
    return best


@dataclass
class WatermarkDecoder:
    """Per-video decoder: feed frames one by one with :meth:`add`, then read :meth:`result`.

    Every frame's normalised luma residual is folded into one tile-sized sum per candidate chip size, so
    memory stays ``O(tile)`` and the soft evidence of all frames adds up before a single decision.
    """

    chip_sizes: tuple[int, ...] | None = None
    """Chip sizes to try; ``None``: the one :func:`chip_size` gives for the first frame, and its neighbours."""
    frames: int = field(default=0, init=False)
    """Frames added so far."""
    _sums: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def add(self, frame: np.ndarray) -> None:
        """Fold one ``(H, W, 3) uint8`` RGB frame into the running sums."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self.chip_sizes is None:
            c0 = chip_size(*frame.shape[:2])
            self.chip_sizes = tuple(c for c in (c0, c0 - 1, c0 + 1) if c >= 2)
        r = _residual(frame, self.chip_sizes[0])  # one residual serves the neighbouring chip sizes too
        for c in self.chip_sizes:
            folded = _fold(r, TILE * c)
            if c in self._sums:
                self._sums[c] += folded
            else:
                self._sums[c] = folded
        self.frames += 1

    def result(self) -> Detection:
        """The decision over every frame added so far."""
        best = Detection(marked=False, payload=None, confidence=0.0, frames_used=self.frames)
        for c, folded in self._sums.items():
            det = _decode_folded(folded, c, self.frames)
            if (det.marked, det.sync_z) > (best.marked, best.sync_z):
                best = det
        return best


def decode_frames(frames: Iterable[np.ndarray], chip_sizes: tuple[int, ...] | None = None) -> Detection:
    """Look for the mark in the frames of one video, combining their soft evidence (``(H, W, 3) uint8`` RGB each)."""
    dec = WatermarkDecoder(chip_sizes=chip_sizes)
    for f in frames:
        dec.add(f)
    return dec.result()


def decode_image(image: np.ndarray) -> Detection:
    """Look for the mark in one ``(H, W, 3) uint8`` RGB picture (a still, or a single frame)."""
    return decode_frames([image])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 pictures of the same shape (``inf`` when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
