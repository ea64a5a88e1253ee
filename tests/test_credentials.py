"""C2PA Content Credentials: signing every output, keys, tampering, re-encoding, and `verify` reading both marks."""

from __future__ import annotations

import base64
import datetime
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import c2pa
import numpy as np
import pytest

from talkinghead import __version__
from talkinghead.cli import main
from talkinghead.errors import InputError
from talkinghead.inference.animate import AnimateOptions, Animator
from talkinghead.io.images import read_image, write_image
from talkinghead.io.video import VideoWriter, read_video
from talkinghead.provenance import Payload
from talkinghead.provenance.credentials import (
    DIGITAL_SOURCE_TYPE,
    ENV_CERT,
    ENV_KEY,
    SELF_ISSUED_ORG,
    WATERMARK_ALG,
    content_credentials,
    default_identity,
    file_sha256,
    read_credentials,
    signing_dir,
)
from talkinghead.provenance.verify import verify_file


@dataclass
class Rendered:
    video: Path
    frames: Path
    payload: str
    model: Path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, micro_model: Path, astronaut_png: Path,
             astronaut_mp4: Path) -> Rendered:
    """One default render (watermark + credentials) with its frames, through the Python API."""
    d = tmp_path_factory.mktemp("signed")
    anim = Animator(micro_model, device="cpu")
    anim.set_source([astronaut_png])
    # A fixed per-video id, so the render (and whether the mark survives re-encoding below) is the same every run:
    # with a fresh random id, the micro model's smooth output lost the mark at crf 23 in about 1 run in 12. The
    # detection rate on real footage is measured by benchmarks/watermark_robustness.py, not here.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("talkinghead.provenance.watermark.secrets.randbits", lambda bits: 0x5A5A5A5 & ((1 << bits) - 1))
        res = anim.animate(astronaut_mp4, d / "out.mp4", AnimateOptions(progress=False, output_size=256,
                                                                         frames_dir=d / "frames",
                                                                         model_file=micro_model))
    assert res.payload is not None
    return Rendered(res.path, d / "frames", res.payload, micro_model)


def _animate_cli(out: Path, micro_model: Path, source: Path, driving: Path, *extra: str) -> int:
    return main(["animate", "--source", str(source), "--driving", str(driving), "--out", str(out), "--model",
                 str(micro_model), "--device", "cpu", "--no-progress", "--size", "64", *extra])


def _mdat_offset(data: bytes) -> tuple[int, int]:
    """Start and end of the mdat box's payload in an mp4 (walking the top-level boxes)."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        if kind == b"mdat":
            return pos + header, pos + size
        pos += size
    raise AssertionError("no mdat box")


# ---------------------------------------------------------------------------------------------------- keys


def test_key_made_on_first_use_private_self_issued_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    folder = signing_dir()
    assert folder == tmp_path / "cfg" / "talkinghead" / "signing" and not folder.exists()
    ident = default_identity()
    assert ident.self_issued and ident.alg == "es256" and ident.cert_path.parent == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("key.pem", "cert.pem", "README.txt"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    leaf, ca = x509.load_pem_x509_certificates(ident.cert_chain)
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == SELF_ISSUED_ORG
    assert leaf.issuer == ca.subject and "self-issued" in ca.subject.rfc4514_string()
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert ski.digest and aki.key_identifier == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert leaf.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
    # the second use reads the same key; no stray temporary folders
    assert default_identity().cert_chain == ident.cert_chain
    assert sorted(p.name for p in folder.parent.iterdir()) == ["signing"]
    # XDG_CONFIG_HOME unset or empty: ~/.config
    monkeypatch.setenv("XDG_CONFIG_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert signing_dir() == tmp_path / "home" / ".config" / "talkinghead" / "signing"


def _organisation_cert(folder: Path) -> tuple[Path, Path]:
    """An organisation's CA and an ES384 signer certificate with the extensions C2PA asks for."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example News Root CA")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example News Newsroom"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example News")])
    ku = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
              encipher_only=False, decipher_only=False)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **ku), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA384()))
    leaf = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **ku),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA384()))
    pem = serialization.Encoding.PEM
    cert, key_path = folder / "org-chain.pem", folder / "org-key.pem"
    cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key_path


def test_organisation_certificate_from_options_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert, key = _organisation_cert(tmp_path / "a")
    img = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    creds = content_credentials(Payload.new(), consent=True, sign_cert=cert, sign_key=key)
    assert creds.identity.alg == "es384" and not creds.identity.self_issued
    out = write_image(tmp_path / "a.png", img, finalize=lambda tmp, dest: creds.sign_file(tmp, title=dest.name))
    rep = read_credentials(out)
    assert rep.valid and rep.signer == "Example News Newsroom" and not rep.self_issued and rep.consent is True
    assert np.array_equal(read_image(out), img)  # the pixels are untouched
    monkeypatch.setenv(ENV_CERT, str(cert))
    monkeypatch.setenv(ENV_KEY, str(key))
    assert content_credentials().identity.cert_path == cert
    # a key that is not the certificate's, a missing file, half a pair: one clear error, before any compute
    _, other_key = _organisation_cert(tmp_path / "b")
    with pytest.raises(InputError, match="does not belong"):
        content_credentials(sign_cert=cert, sign_key=other_key)
    with pytest.raises(InputError, match="no such file"):
        content_credentials(sign_cert=tmp_path / "missing.pem", sign_key=key)
    monkeypatch.delenv(ENV_KEY)
    with pytest.raises(InputError, match="go together"):
        content_credentials()


def test_bad_signing_options_exit_2_in_one_line(micro_model: Path, astronaut_png: Path, astronaut_mp4: Path,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.mp4"
    cases = [("--sign-cert", str(tmp_path / "nope.pem"), "--sign-key", str(tmp_path / "nope.key")),
             ("--sign-cert", str(astronaut_png)),
             ("--no-credentials", "--consent")]
    for extra in cases:
        assert _animate_cli(out, micro_model, astronaut_png, astronaut_mp4, *extra) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("talkinghead: error:") and "Traceback" not in err, err
    assert not out.exists()


# ------------------------------------------------------------------------------------------- round trips


def test_round_trip_video_and_frames_carry_a_valid_manifest_and_the_watermark(rendered: Rendered) -> None:
    for path in (rendered.video, rendered.frames / "000000.png", rendered.frames / "000039.png"):
        r = verify_file(path)
        c = r.credentials
        assert c is not None and c.present and c.error is None, path
        assert c.valid and c.signature == "valid" and c.content == "matching" and c.manifest_intact, c.failures
        assert c.self_issued and not c.trusted and c.failures == ("signingCredential.untrusted",)
        assert c.synthetic and c.source_type == DIGITAL_SOURCE_TYPE and c.actions == ("c2pa.created",)
        assert c.generator == f"talkinghead {__version__}"
        assert c.watermark == rendered.payload and r.watermarked and str(r.payload) == rendered.payload
        assert c.consent is False
        assert c.model is not None and c.model["file_sha256"] == file_sha256(rendered.model)
        assert len(c.model["weights_sha256"]) == 64
        assert r.synthetic and r.verdict == "marked synthetic by both the C2PA manifest and the watermark"
    assert sorted(p.name for p in rendered.frames.iterdir()) == [f"{i:06d}.png" for i in range(40)]  # no temp left
    assert all(read_credentials(p).valid for p in rendered.frames.iterdir())  # every frame is signed


def test_manifest_read_by_c2pa_own_reader(rendered: Rendered) -> None:
    """Not only our wrapper: c2pa-python's Reader with its default settings finds every claim."""
    with c2pa.Reader(str(rendered.video)) as reader:
        store = json.loads(reader.json())
        assert reader.get_validation_state() == "Valid"  # signature and hashes good; the signer is untrusted
    active = store["manifests"][store["active_manifest"]]
    by_label = {a["label"]: a["data"] for a in active["assertions"]}
    action = by_label["c2pa.actions.v2"]["actions"][0]
    assert action["action"] == "c2pa.created" and action["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert action["softwareAgent"] == {"name": "talkinghead", "version": __version__}
    soft = by_label["c2pa.soft-binding"]
    payload_bits = np.unpackbits(np.frombuffer(base64.b64decode(soft["blocks"][0]["value"]), dtype=np.uint8))
    assert soft["alg"] == WATERMARK_ALG and str(Payload.from_bits(payload_bits)) == rendered.payload
    assert by_label["talkinghead.consent"]["likeness_consent_declared"] is False
    assert by_label["talkinghead.model"]["file_sha256"] == file_sha256(rendered.model)
    assert active["signature_info"]["issuer"] == SELF_ISSUED_ORG and active["title"] == "out.mp4"
    # the chain is well formed: with the installation's CA as a trust anchor, c2pa trusts the signer
    ca = "-----BEGIN CERTIFICATE-----" + default_identity().cert_chain.decode().split("-----BEGIN CERTIFICATE-----")[2]
    settings = c2pa.Settings.from_dict({"trust": {"user_anchors": ca}, "verify": {"ocsp_fetch": False}})
    with c2pa.Reader(str(rendered.video), context=c2pa.Context(settings=settings)) as reader:
        assert reader.get_validation_state() == "Trusted"


# ---------------------------------------------------------------------------------------------- tampering


def test_one_changed_byte_in_the_video_data_reads_altered_and_the_watermark_still_reads(
        rendered: Rendered, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(rendered.video.read_bytes())
    start, end = _mdat_offset(bytes(data))
    data[(start + end) // 2] ^= 0x01
    bad = tmp_path / "tampered.mp4"
    bad.write_bytes(bytes(data))
    r = verify_file(bad)
    assert r.credentials is not None and r.credentials.content == "altered" and not r.credentials.valid
    assert r.credentials.signature == "valid"  # the claim itself is intact: the content no longer matches it
    assert r.watermarked and str(r.payload) == rendered.payload
    assert "ALTERED" in r.verdict and "both" in r.verdict
    assert main(["verify", str(bad)]) == 0
    assert "content ALTERED after signing" in capsys.readouterr().out
    # a PNG frame: one byte of its pixel data
    png = bytearray((rendered.frames / "000005.png").read_bytes())
    i = png.find(b"IDAT") + 100
    png[i] ^= 0x01
    (tmp_path / "f.png").write_bytes(bytes(png))
    assert read_credentials(tmp_path / "f.png").content == "altered"


def test_reencode_drops_the_manifest_and_keeps_the_watermark(rendered: Rendered, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    frames, info = read_video(rendered.video)
    copy = tmp_path / "reencoded.mp4"
    with VideoWriter(copy, fps=info.fps, crf=23) as w:
        for f in frames:
            w.write(f)
    r = verify_file(copy)
    assert r.credentials is not None and not r.credentials.present
    assert r.watermarked and str(r.payload) == rendered.payload and r.synthetic
    assert r.verdict.startswith("marked synthetic by the watermark only") and "re-encoding" in r.verdict
    assert main(["verify", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "by the watermark only" in out and "manifest: none" in out


@pytest.mark.parametrize("where", ["jumbf header", "manifest body"])
def test_corrupt_manifest_gives_a_clear_line_not_a_traceback(rendered: Rendered, tmp_path: Path, where: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(rendered.video.read_bytes())
    j = data.find(b"jumb")
    assert 0 < j < 200  # the manifest store sits in a uuid box at the front
    if where == "jumbf header":
        data[j + 40 : j + 60] = bytes(20)
    else:
        data[j + 200] ^= 0xFF
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    rep = read_credentials(bad)
    assert rep.present and not rep.valid
    assert rep.error is not None and "\n" not in rep.error
    assert main(["verify", str(bad)]) == 0  # the watermark still marks it
    out = capsys.readouterr()
    assert "manifest: present but unreadable (" in out.out and "Traceback" not in out.out + out.err
    assert main(["verify", "--json", str(bad)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["credentials"]["error"] and doc["watermarked"] and "unreadable" in doc["verdict"]


def test_changed_signature_reads_invalid(rendered: Rendered, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(rendered.video.read_bytes())
    k = data.find(b"c2pa.signature")
    assert 0 < k < 20000
    data[k + 100] ^= 0xFF
    bad = tmp_path / "forged.mp4"
    bad.write_bytes(bytes(data))
    rep = read_credentials(bad)
    assert rep.present and rep.error is None and rep.signature == "invalid" and not rep.valid
    assert main(["verify", str(bad)]) == 0
    assert "signature is INVALID" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- opting out


def test_no_watermark_still_gets_a_manifest_unless_no_credentials(micro_model: Path, astronaut_png: Path,
                                                                  astronaut_mp4: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    only_manifest, nothing = tmp_path / "manifest.mp4", tmp_path / "nothing.mp4"
    assert _animate_cli(only_manifest, micro_model, astronaut_png, astronaut_mp4, "--no-watermark", "--consent") == 0
    assert _animate_cli(nothing, micro_model, astronaut_png, astronaut_mp4, "--no-watermark", "--no-credentials") == 0
    capsys.readouterr()
    r = verify_file(only_manifest)
    assert r.credentials is not None and r.credentials.valid and r.credentials.synthetic
    assert r.credentials.consent is True and r.credentials.watermark is None and not r.watermarked
    assert r.synthetic and r.verdict == "marked synthetic by the C2PA manifest only (no watermark found)"
    manifest = r.credentials.manifest or {}
    assert "c2pa.soft-binding" not in {a["label"] for a in manifest.get("assertions", [])}
    assert main(["verify", str(only_manifest)]) == 0
    r = verify_file(nothing)
    assert r.credentials is not None and not r.credentials.present and not r.watermarked and not r.synthetic
    assert main(["verify", str(nothing)]) == 1
    assert "by neither" in capsys.readouterr().out
    assert main(["verify", "--json", str(only_manifest), str(nothing)]) == 1
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["manifest_marked"] for d in docs] == [True, False]
    assert docs[0]["credentials"]["signature"] == "valid" and docs[0]["credentials"]["likeness_consent_declared"]
    assert docs[0]["credentials"]["manifest"]["assertions"]  # --json prints the manifest itself


def test_signing_failure_leaves_no_output(tmp_path: Path) -> None:
    """The writer's finalize hook runs on the temporary file; if it fails, nothing appears under the name."""
    seen: list[tuple[Path, Path]] = []

    def fail(tmp: Path, dest: Path) -> None:
        seen.append((tmp, dest))
        assert tmp.is_file() and tmp != dest and tmp.parent == dest.parent
        raise RuntimeError("signing failed")

    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="signing failed"):
        with VideoWriter(out, fps=25.0, finalize=fail) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
    assert seen and seen[0][1] == out and list(tmp_path.iterdir()) == []
