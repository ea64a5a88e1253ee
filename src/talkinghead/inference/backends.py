"""Inference backends with one interface for both architectures: PyTorch (CPU or CUDA) and ONNX Runtime (CPU).

A backend is given the person once (:meth:`Backend.set_sources`: the source crops, their landmarks and ψ) and then
renders target landmarks (:meth:`Backend.render`; the warp generator's :meth:`Backend.render_layers` also returns what
composing the same faces at the photo's own resolution needs). What the networks need from landmarks — sketches for the paper's
generator; sketches and thin-plate prior flows for the warp generator — is computed here, the same way for every
backend. Images are ``(N, 3, S, S) float32`` in [-1, 1]; ê is ``(embed_dim,)``, ψ ``(1, psi_dim)``.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from talkinghead.config import ModelConfig
from talkinghead.errors import InputError
from talkinghead.faces.warp import prior_grids
from talkinghead.inference.source import fused_count, source_groups
from talkinghead.models.bundle import ModelBundle, bake_spectral_norm, clone_network
from talkinghead.models.inputs import embedder_inputs, generation_regions, model_crops, sketches_at, to_input

__all__ = ["Backend", "OnnxBackend", "RenderLayers", "TorchBackend", "embedder_inputs", "make_backend", "pick_device"]


@dataclass
class RenderLayers:
    """The warp generator's output for N targets and what it is made of (all float32, model resolution S, motion
    resolution m): ``image = w_warp * warp(sources, grid) + w_static * sources + w_gen * generated``, each source
    weighted by its ``conf``. :func:`~talkinghead.inference.compose.compose_layers` evaluates the same sum on larger
    copies of the sources."""

    image: np.ndarray
    """``(N, 3, S, S)`` in [-1, 1]."""
    weights: np.ndarray
    """``(N, 3, S, S)``: the warped, unwarped and generated paths' weights (they sum to 1)."""
    generated: np.ndarray
    """``(N, 3, S, S)`` in [-1, 1]."""
    grid: np.ndarray
    """``(N, k, m, m, 2)``: where each pixel samples each of its k sources (grid_sample's [-1, 1] coordinates)."""
    conf: np.ndarray
    """``(N, k, m, m)``: the k sources' shares (ones when k = 1)."""
    sources: np.ndarray
    """``(N, k) int``: which of the person's sources (the order given to ``set_sources``) each target used."""


def _layers(n: int, k: int, res: int, m: int) -> RenderLayers:
    z = lambda *shape: np.empty(shape, np.float32)  # noqa: E731
    return RenderLayers(z(n, 3, res, res), z(n, 3, res, res), z(n, 3, res, res), z(n, k, m, m, 2), z(n, k, m, m),
                        np.empty((n, k), np.int64))


def _fill(layers: RenderLayers, rows: np.ndarray, src: np.ndarray, image: np.ndarray, weights: np.ndarray,
          generated: np.ndarray, grid: np.ndarray, conf: np.ndarray | None) -> None:
    """Store one source group's outputs (``grid (len(rows) * k, m, m, 2)``, ``conf (len(rows) * k, 1, m, m)``)."""
    n, k = len(rows), len(src)
    layers.image[rows], layers.weights[rows], layers.generated[rows] = image, weights, generated
    layers.grid[rows] = grid.reshape(n, k, *grid.shape[1:])
    layers.conf[rows] = 1.0 if conf is None else conf.reshape(n, k, *conf.shape[2:])
    layers.sources[rows] = src


class Backend(Protocol):
    name: str

    def embed(self, frames: np.ndarray, sketches: np.ndarray) -> np.ndarray: ...
    def project(self, e: np.ndarray) -> np.ndarray: ...
    def set_sources(self, crops: np.ndarray, landmarks: np.ndarray, psi: np.ndarray) -> None: ...
    def render(self, targets: np.ndarray) -> np.ndarray: ...
    def render_layers(self, targets: np.ndarray) -> RenderLayers: ...


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise InputError(f"unknown device {name!r} (auto, cpu, cuda)")
    return torch.device(name)


class _Person:
    """What a backend keeps of the person between frames."""

    def __init__(self) -> None:
        self.psi: np.ndarray | None = None
        self.landmarks: np.ndarray | None = None
        self.crops: np.ndarray | None = None


class _Rendering:
    """``render`` and ``render_layers`` of both backends, over their ``_render(targets, layers or None)``."""

    config: ModelConfig
    warp: bool
    person: _Person

    def _render(self, targets: np.ndarray, layers: RenderLayers | None) -> np.ndarray:
        raise NotImplementedError

    def render(self, targets: np.ndarray) -> np.ndarray:
        """Target landmarks ``(N, 68, 2)`` in model-resolution pixels → ``(N, 3, S, S)`` in [-1, 1]."""
        return self._render(targets, None)

    def render_layers(self, targets: np.ndarray) -> RenderLayers:
        """Like :meth:`render`, with what the faces are made of (the warp generator only)."""
        if not self.warp:
            raise InputError("only the warp generator's faces are made of layers")
        count = len(self.person.landmarks) if self.person.landmarks is not None else 1
        cfg = self.config
        layers = _layers(len(targets), fused_count(cfg.fuse_sources, count), cfg.resolution, cfg.motion_resolution)
        self._render(targets, layers)
        return layers


class TorchBackend(_Rendering):
    name = "torch"

    def __init__(self, bundle: ModelBundle, device: torch.device) -> None:
        self.device = device
        self.config = bundle.config
        self.warp = bundle.config.arch == "warp"
        self.generator = bake_spectral_norm(clone_network(bundle.generator)).to(device)
        self.embedder = bake_spectral_norm(clone_network(bundle.embedder)).to(device) if bundle.embedder else None
        self.dtype = torch.float16 if device.type == "cuda" else torch.float32
        if self.dtype == torch.float16:
            self.generator.half()
        self.bundle = bundle
        self.person = _Person()
        self._feats: list[torch.Tensor] = []
        self._images: torch.Tensor | None = None
        self._picked: tuple[tuple[int, ...], torch.Tensor, list[torch.Tensor]] | None = None
        """The last sources picked (indices, images, features): consecutive frames mostly pick the same ones."""

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype)

    @torch.inference_mode()
    def embed(self, frames: np.ndarray, sketches: np.ndarray) -> np.ndarray:
        if self.embedder is None:
            raise InputError("this model file has no embedder (it is a fine-tuned person file)")
        f = torch.from_numpy(frames).to(self.device)
        s = torch.from_numpy(sketches).to(self.device)
        return self.embedder.embed_frames(f, s).mean(0).float().cpu().numpy()

    @torch.inference_mode()
    def project(self, e: np.ndarray) -> np.ndarray:
        return self.generator.project(torch.from_numpy(e[None]).to(self.device, self.dtype)).float().cpu().numpy()

    @torch.inference_mode()
    def set_sources(self, crops: np.ndarray, landmarks: np.ndarray, psi: np.ndarray) -> None:
        """The person: source crops ``(K, S0, S0, 3) uint8``, landmarks ``(K, 68, 2)`` in their pixels, ψ."""
        self.person.psi = np.asarray(psi, np.float32)
        if not self.warp:
            return
        crops, landmarks = model_crops(self.bundle, crops, landmarks)
        self.person.crops, self.person.landmarks = crops, landmarks
        images = self._t(to_input(crops))
        sketches = self._t(sketches_at(landmarks, crops.shape[1], crops.shape[1]))
        self._images = images[None]
        self._feats = [f[None] for f in self.generator.encode(images, sketches)]
        self._picked = None

    def _pick(self, src: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The source images ``(1, k, 3, S, S)`` and features of these source indices (kept for the next frame)."""
        key = tuple(int(i) for i in src)
        if self._picked is None or self._picked[0] != key:
            assert self._images is not None
            j = torch.as_tensor(key, dtype=torch.long, device=self.device)
            self._picked = (key, self._images[:, j], [f[:, j] for f in self._feats])
        return self._picked[1], self._picked[2]

    @torch.inference_mode()
    def _render(self, targets: np.ndarray, layers: RenderLayers | None) -> np.ndarray:
        psi = self.person.psi
        if psi is None:
            raise InputError("set a source first")
        n, res = len(targets), self.config.resolution
        p = self._t(psi).expand(n, -1)
        if not self.warp:
            return self.generator(self._t(sketches_at(targets, res, res)), p).float().cpu().numpy()
        assert self._images is not None and self.person.landmarks is not None
        m, lmk = self.config.motion_resolution, self.person.landmarks
        out = np.empty((n, 3, res, res), np.float32) if layers is None else layers.image
        np_ = lambda t: t.float().cpu().numpy()  # noqa: E731
        for src, rows in source_groups(targets, lmk, self.config.fuse_sources):
            t, (picked, picked_feats) = targets[rows], self._pick(src)
            prior = self._t(prior_grids(t, lmk[src], res, m, self.config.head_ring))
            sketch = self._t(sketches_at(t, res, m))
            region = self._t(generation_regions(t, res, m, self.config.gen_region, self.config.gen_region_eyes,
                                                lmk[src] if self.config.gen_keep_visible else None)) \
                if self.config.gen_region else None
            feats = [f.expand(len(rows), -1, -1, -1, -1) for f in picked_feats]
            images = picked.expand(len(rows), -1, -1, -1, -1)
            image, aux = self.generator(images, feats, prior, sketch, p[: len(rows)], region)
            if layers is None:
                out[rows] = np_(image)
            else:
                _fill(layers, rows, src, np_(image), np_(aux["weights"]), np_(aux["generated"]), np_(aux["grid"]),
                      None if aux["conf"] is None else np_(aux["conf"]))
        return out


def _cache_dir() -> Path:
    d = Path.home() / ".cache" / "talkinghead" / "onnx"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], names: list[str], out: Path,
            outputs: list[str] | None = None, axes: dict[str, dict[int, str]] | None = None) -> None:
    from talkinghead.io.atomic import atomic_path

    outputs = outputs or ["output"]
    axes = axes or {n: {0: "batch"} for n in [*names, *outputs]}
    with atomic_path(out, suffix=".onnx") as tmp, warnings.catch_warnings():
        # the tracer's notes on shape checks that are constant for this model are for developers, not users
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), input_names=names, output_names=outputs, dynamic_axes=axes,
                          opset_version=17, dynamo=False)


class _Embed(torch.nn.Module):
    def __init__(self, embedder: torch.nn.Module) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, frames: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        return self.embedder.embed_frames(frames, sketches)


class _Encode(torch.nn.Module):
    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, images: torch.Tensor, sketches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.generator.encode(images, sketches))


class _WarpGenerate(torch.nn.Module):
    """The warp generator for one person: sources ``(1, K, ...)`` are broadcast over the N targets."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, images: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor,
                prior: torch.Tensor, sketch: torch.Tensor, psi: torch.Tensor,
                region: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = prior.shape[0]
        feats = [f.expand(n, -1, -1, -1, -1) for f in (f1, f2, f3)]
        image, aux = self.generator(images.expand(n, -1, -1, -1, -1), feats, prior, sketch, psi.expand(n, -1), region)
        return image, aux["weights"], aux["generated"], aux["grid"], aux["conf"]


def _tag(*modules: torch.nn.Module | None, config: ModelConfig | None = None) -> str:
    """The cache key of an export: the weights, and what decides the graph besides them: the model config (fixed
    rules such as ``smooth_blend`` and ``border_flow`` are no weights) and the code of the networks (the
    ``talkinghead.models`` package) and of this module: an upgraded talkinghead must not reuse a graph exported by
    the one before."""
    import dataclasses
    import json

    import talkinghead.models

    key = hashlib.sha256()
    if config is not None:
        key.update(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str).encode())
    for m in modules:
        if m is not None:
            for k, v in m.state_dict().items():
                key.update(k.encode())
                key.update(v.cpu().numpy().tobytes())
    for f in [Path(__file__), *sorted(Path(talkinghead.models.__file__).parent.glob("*.py"))]:
        key.update(f.read_bytes())
    return key.hexdigest()[:16]


class OnnxBackend(_Rendering):
    """Exports the (spectral-norm-baked) networks to ONNX once per model, cached under ~/.cache/talkinghead."""

    name = "onnx"

    def __init__(self, bundle: ModelBundle, threads: int = 0) -> None:
        import onnxruntime as ort

        gen = bake_spectral_norm(clone_network(bundle.generator)).float()
        emb = bake_spectral_norm(clone_network(bundle.embedder)).float() if bundle.embedder else None
        self.config = bundle.config
        self.bundle = bundle
        self.warp = bundle.config.arch == "warp"
        s = bundle.config.resolution
        tag = _tag(gen, emb, config=bundle.config)
        d = _cache_dir()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        prov = ["CPUExecutionProvider"]

        def session(path: Path) -> ort.InferenceSession:
            return ort.InferenceSession(str(path), opts, providers=prov)

        if self.warp:
            g_path, c_path = d / f"wg-{tag}.onnx", d / f"wc-{tag}.onnx"
            m = bundle.config.motion_resolution
            img = torch.zeros(1, 3, s, s)
            feats = [f[None] for f in gen.encode(img, img)]
            if not c_path.is_file():
                _export(_Encode(gen), (img, img), ["images", "sketches"], c_path, ["f1", "f2", "f3"])
            if not g_path.is_file():
                axes = {"images": {1: "k"}, "f1": {1: "k"}, "f2": {1: "k"}, "f3": {1: "k"},
                        "prior": {0: "batch", 1: "k"}, "sketch": {0: "batch"}, "region": {0: "batch"},
                        "output": {0: "batch"}, "weights": {0: "batch"}, "generated": {0: "batch"},
                        "grid": {0: "batch_k"}, "conf": {0: "batch_k"}}
                _export(_WarpGenerate(gen), (img[None], *feats, torch.zeros(2, 1, 2, m, m), torch.zeros(2, 3, m, m),
                                             torch.zeros(1, gen.psi_dim), torch.ones(2, 1, m, m)),
                        ["images", "f1", "f2", "f3", "prior", "sketch", "psi", "region"], g_path,
                        ["output", "weights", "generated", "grid", "conf"], axes=axes)
            self._c = session(c_path)
        else:
            g_path = d / f"g-{tag}.onnx"
            if not g_path.is_file():
                _export(gen, (torch.zeros(1, 3, s, s), torch.zeros(1, gen.psi_dim)), ["sketch", "psi"], g_path)
        e_path = d / f"e-{tag}.onnx"
        if emb is not None and not e_path.is_file():
            r = emb.cfg.resolution
            _export(_Embed(emb), (torch.zeros(1, 3, r, r), torch.zeros(1, 3, r, r)), ["frames", "sketches"], e_path)
        self._g = session(g_path)
        self._e = session(e_path) if emb is not None else None
        self._project = gen.project
        self.person = _Person()
        self._sources: dict[str, np.ndarray] = {}

    def embed(self, frames: np.ndarray, sketches: np.ndarray) -> np.ndarray:
        if self._e is None:
            raise InputError("this model file has no embedder (it is a fine-tuned person file)")
        return self._e.run(None, {"frames": frames, "sketches": sketches})[0].mean(0)

    def project(self, e: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._project(torch.from_numpy(e[None]).float()).numpy()

    def set_sources(self, crops: np.ndarray, landmarks: np.ndarray, psi: np.ndarray) -> None:
        self.person.psi = np.ascontiguousarray(psi, np.float32)
        if not self.warp:
            return
        crops, landmarks = model_crops(self.bundle, crops, landmarks)
        self.person.crops, self.person.landmarks = crops, landmarks
        images = to_input(crops)
        sketches = sketches_at(landmarks, crops.shape[1], crops.shape[1])
        f1, f2, f3 = self._c.run(None, {"images": images, "sketches": sketches})
        self._sources = {"images": images[None], "f1": f1[None], "f2": f2[None], "f3": f3[None],
                         "psi": self.person.psi}

    def _render(self, targets: np.ndarray, layers: RenderLayers | None) -> np.ndarray:
        psi = self.person.psi
        if psi is None:
            raise InputError("set a source first")
        n, res = len(targets), self.config.resolution
        if not self.warp:
            psi_n = np.ascontiguousarray(np.broadcast_to(psi, (n, psi.shape[1])), dtype=np.float32)
            return self._g.run(None, {"sketch": sketches_at(targets, res, res), "psi": psi_n})[0]
        assert self.person.landmarks is not None
        m, lmk = self.config.motion_resolution, self.person.landmarks
        out = np.empty((n, 3, res, res), np.float32) if layers is None else layers.image
        wanted = ["output"] if layers is None else ["output", "weights", "generated", "grid", "conf"]
        for src, rows in source_groups(targets, lmk, self.config.fuse_sources):
            t = targets[rows]
            feeds = {k: (np.ascontiguousarray(v[:, src]) if k != "psi" else v) for k, v in self._sources.items()}
            g = self.config.gen_region  # the graph always gates: all ones is no gate
            region = generation_regions(t, res, m, g, self.config.gen_region_eyes,
                                        lmk[src] if self.config.gen_keep_visible else None) if g else \
                np.ones((len(rows), 1, m, m), np.float32)
            feeds |= {"prior": prior_grids(t, lmk[src], res, m, self.config.head_ring),
                      "sketch": sketches_at(t, res, m), "region": region}
            got = self._g.run(wanted, feeds)
            if layers is None:
                out[rows] = got[0]
            else:
                _fill(layers, rows, src, *got)
        return out


def make_backend(bundle: ModelBundle, backend: str = "torch", device: str = "auto") -> Backend:
    if backend == "torch":
        return TorchBackend(bundle, pick_device(device))
    if backend == "onnx":
        if device not in ("auto", "cpu"):
            raise InputError("the onnx backend runs on the CPU; use --backend torch for --device cuda")
        return OnnxBackend(bundle)
    raise InputError(f"unknown backend {backend!r} (torch, onnx)")
