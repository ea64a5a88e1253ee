"""Inference backends with one interface: PyTorch (CPU or CUDA) and ONNX Runtime (CPU).

Images and sketches are ``(N, 3, S, S) float32`` in [-1, 1]; ê is ``(embed_dim,)``, ψ ``(1, psi_dim)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from talkinghead.errors import InputError
from talkinghead.models.bundle import ModelBundle, bake_spectral_norm, clone_network


class Backend(Protocol):
    name: str

    def embed(self, frames: np.ndarray, sketches: np.ndarray) -> np.ndarray: ...
    def project(self, e: np.ndarray) -> np.ndarray: ...
    def generate(self, sketches: np.ndarray, psi: np.ndarray) -> np.ndarray: ...


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise InputError(f"unknown device {name!r} (auto, cpu, cuda)")
    return torch.device(name)


class TorchBackend:
    name = "torch"

    def __init__(self, bundle: ModelBundle, device: torch.device) -> None:
        self.device = device
        self.generator = bake_spectral_norm(clone_network(bundle.generator)).to(device)
        self.embedder = bake_spectral_norm(clone_network(bundle.embedder)).to(device) if bundle.embedder else None
        self.dtype = torch.float16 if device.type == "cuda" else torch.float32
        if self.dtype == torch.float16:
            self.generator.half()

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
    def generate(self, sketches: np.ndarray, psi: np.ndarray) -> np.ndarray:
        s = torch.from_numpy(sketches).to(self.device, self.dtype)
        p = torch.from_numpy(psi).to(self.device, self.dtype).expand(len(s), -1)
        return self.generator(s, p).float().cpu().numpy()


def _cache_dir() -> Path:
    d = Path.home() / ".cache" / "talkinghead" / "onnx"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], names: list[str], out: Path) -> None:
    from talkinghead.io.atomic import atomic_path

    axes = {n: {0: "batch"} for n in [*names, "output"]}
    with atomic_path(out, suffix=".onnx") as tmp:
        torch.onnx.export(module, args, str(tmp), input_names=names, output_names=["output"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)


class _Embed(torch.nn.Module):
    def __init__(self, embedder: torch.nn.Module) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, frames: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        return self.embedder.embed_frames(frames, sketches)


class OnnxBackend:
    """Exports the (spectral-norm-baked) networks to ONNX once per model, cached under ~/.cache/talkinghead."""

    name = "onnx"

    def __init__(self, bundle: ModelBundle, threads: int = 0) -> None:
        import onnxruntime as ort

        gen = bake_spectral_norm(clone_network(bundle.generator)).float()
        emb = bake_spectral_norm(clone_network(bundle.embedder)).float() if bundle.embedder else None
        s = bundle.config.resolution
        key = hashlib.sha256()
        for m in (gen, emb):
            if m is not None:
                for k, v in m.state_dict().items():
                    key.update(k.encode())
                    key.update(v.cpu().numpy().tobytes())
        tag = key.hexdigest()[:16]
        g_path, e_path = _cache_dir() / f"g-{tag}.onnx", _cache_dir() / f"e-{tag}.onnx"
        if not g_path.is_file():
            _export(gen, (torch.zeros(1, 3, s, s), torch.zeros(1, gen.psi_dim)), ["sketch", "psi"], g_path)
        if emb is not None and not e_path.is_file():
            _export(_Embed(emb), (torch.zeros(1, 3, s, s), torch.zeros(1, 3, s, s)), ["frames", "sketches"], e_path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        prov = ["CPUExecutionProvider"]
        self._g = ort.InferenceSession(str(g_path), opts, providers=prov)
        self._e = ort.InferenceSession(str(e_path), opts, providers=prov) if emb is not None else None
        self._project = gen.project

    def embed(self, frames: np.ndarray, sketches: np.ndarray) -> np.ndarray:
        if self._e is None:
            raise InputError("this model file has no embedder (it is a fine-tuned person file)")
        return self._e.run(None, {"frames": frames, "sketches": sketches})[0].mean(0)

    def project(self, e: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._project(torch.from_numpy(e[None]).float()).numpy()

    def generate(self, sketches: np.ndarray, psi: np.ndarray) -> np.ndarray:
        psi = np.ascontiguousarray(np.broadcast_to(psi, (len(sketches), psi.shape[1])), dtype=np.float32)
        return self._g.run(None, {"sketch": np.ascontiguousarray(sketches, np.float32), "psi": psi})[0]


def make_backend(bundle: ModelBundle, backend: str = "torch", device: str = "auto") -> Backend:
    if backend == "torch":
        return TorchBackend(bundle, pick_device(device))
    if backend == "onnx":
        if device not in ("auto", "cpu"):
            raise InputError("the onnx backend runs on the CPU; use --backend torch for --device cuda")
        return OnnxBackend(bundle)
    raise InputError(f"unknown backend {backend!r} (torch, onnx)")
