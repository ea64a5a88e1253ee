"""C2PA Content Credentials: a signed manifest in every output file that says it was made by an AI model.

The watermark (``watermark.py``) survives re-encoding but only our tool reads it. A C2PA manifest is the
industry-standard label that other tools (browsers, social networks, ``c2patool``, the Content Credentials
site) read, and it is cryptographically bound to the file's bytes: any change to the content after signing
shows as "altered", while re-encoding or a metadata-stripping upload drops it altogether. The two are
complementary and every output gets both; ``verify`` reports each.

Signing (offline, with ``c2pa-python``):

* The manifest holds a ``c2pa.actions`` assertion (``c2pa.created``, digital source type
  ``trainedAlgorithmicMedia``, software agent talkinghead + version), a ``c2pa.soft-binding`` assertion naming
  our watermark and its payload (so a re-encoded copy that lost the manifest can be matched back to it), the
  model's hash (``talkinghead.model``) and whether consent to the use of the person's likeness was declared
  (``talkinghead.consent``: recorded, never implied).
* Keys: by default a per-installation key and certificate made on first use under
  ``$XDG_CONFIG_HOME/talkinghead/signing`` (``~/.config`` when unset), files 0600. The certificate is issued by a
  local CA made at the same time (its private key is thrown away) and is labelled self-issued: C2PA validators
  report it as untrusted, which is honest. An organisation passes its own certificate chain and key
  (``--sign-cert/--sign-key`` or ``TALKINGHEAD_SIGN_CERT/TALKINGHEAD_SIGN_KEY``). No network access: no
  timestamp authority unless ``TALKINGHEAD_TSA_URL`` names one, no OCSP, no remote manifests.

Reading: :func:`read_credentials` → :class:`CredentialsReport` (present, signature, content hash, signer, claims).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead import __version__
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.provenance.watermark import Payload

ENV_CERT = "TALKINGHEAD_SIGN_CERT"
ENV_KEY = "TALKINGHEAD_SIGN_KEY"
ENV_TSA = "TALKINGHEAD_TSA_URL"

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPE = IPTC + "trainedAlgorithmicMedia"
AI_SOURCE_TYPES = frozenset(
    IPTC + t for t in ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
                       "compositeSynthetic")
)
"""Digital source types that declare the content generated (in whole or part) by an algorithm."""

WATERMARK_ALG = "talkinghead.watermark.v1"
"""Soft-binding algorithm name of our watermark (``watermark.py``: the 64-bit payload, base64 in the block)."""
MODEL_LABEL = "talkinghead.model"
CONSENT_LABEL = "talkinghead.consent"

SELF_ISSUED_ORG = "talkinghead (self-issued)"
"""Organisation name in the default certificates: says that no certificate authority vouches for them."""
SIGNER_CN = "talkinghead self-issued signer"
CA_CN = "talkinghead self-issued CA (not a trusted authority)"

MIME_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
              ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".tif": "image/tiff",
              ".tiff": "image/tiff"}
"""Output formats we sign (by extension); c2pa-python supports each of them."""

_SETTINGS = {
    "builder": {"thumbnail": {"enabled": False}},  # a thumbnail would add up to the image's size again
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},  # never touch the network
}


class CredentialsError(TalkingHeadError):
    """Signing failed (exit code 1): the output was not written."""


def _c2pa() -> Any:
    import c2pa  # imported on use: it loads a 23 MB native library

    return c2pa


@lru_cache(maxsize=1)
def _context() -> Any:
    c2pa = _c2pa()
    return c2pa.Context(settings=c2pa.Settings.from_dict(_SETTINGS))


# ------------------------------------------------------------------------------------------------------ keys


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/talkinghead`` (``~/.config/talkinghead`` when the variable is unset or empty)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "talkinghead"


def signing_dir() -> Path:
    """Where the per-installation signing key and certificate live."""
    return config_dir() / "signing"


@dataclass(frozen=True)
class SigningIdentity:
    """A certificate chain (PEM, signer first) and its private key (PEM), ready for c2pa-python."""

    cert_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    alg: str
    """``es256``, ``es384``, ``es512``, ``ps256`` or ``ed25519`` (from the key's type)."""
    self_issued: bool
    cert_path: Path
    key_path: Path
    tsa_url: str | None = None
    subject: str = ""
    """The signer certificate's common name (and organisation)."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # whatever the umask


def _make_self_issued(folder: Path) -> None:
    """A local CA (key discarded) and a signer certificate for C2PA (ES256), written into ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_ISSUED_ORG)])

    def usage(sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name(CA_CN)).issuer_name(name(CA_CN))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(sign=False, ca=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name(SIGNER_CN)).issuer_name(name(CA_CN))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(sign=True, ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write_private(folder / "cert.pem", leaf.public_bytes(pem) + ca.public_bytes(pem))
    _write_private(folder / "key.pem", key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    _write_private(folder / "README.txt", (
        "talkinghead's per-installation signing key for C2PA Content Credentials (made on first use).\n"
        "The certificate is SELF-ISSUED: its CA was made on this machine and its private key thrown away.\n"
        "C2PA validators report it as untrusted. Every output signed with it can be linked to this installation.\n"
        "Delete this folder to make a new key; use --sign-cert/--sign-key for an organisation's certificate.\n"
    ).encode())


def default_identity(create: bool = True) -> SigningIdentity:
    """The per-installation key and certificate, made on first use (safe when several processes race)."""
    folder = signing_dir()
    if not (folder / "key.pem").is_file() and create:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".signing.", dir=folder.parent))  # 0700
        try:
            _make_self_issued(tmp)
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / "key.pem").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_identity(folder / "cert.pem", folder / "key.pem", tsa_url=os.environ.get(ENV_TSA) or None,
                         self_issued=True)


def _alg_for(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in algs:
            return algs[key.curve.name]
        raise ValueError(f"elliptic curve {key.curve.name} is not one C2PA signs with (P-256, P-384, P-521)")
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ValueError(f"{type(key).__name__} keys cannot sign C2PA manifests (use EC, RSA or Ed25519)")


def load_identity(cert: str | Path, key: str | Path, tsa_url: str | None = None,
                  self_issued: bool = False) -> SigningIdentity:
    """Read a PEM certificate chain (signer first) and its PEM private key; :class:`InputError` when unusable."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    cert, key = Path(cert), Path(key)
    for what, p in (("certificate", cert), ("key", key)):
        if not p.is_file():
            raise InputError(f"signing {what} {p}: no such file")
    chain_pem, key_pem = cert.read_bytes(), key.read_bytes()
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise InputError(f"signing certificate {cert}: not a PEM certificate chain ({exc})") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
        alg = _alg_for(private)
    except (ValueError, TypeError) as exc:
        raise InputError(f"signing key {key}: not usable ({exc})") from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if chain[0].public_key().public_bytes(der, pub) != private.public_key().public_bytes(der, pub):
        raise InputError(f"signing key {key} does not belong to the first certificate in {cert}")
    attrs = chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = chain[0].subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    subject = ", ".join(str(a.value) for a in (*attrs, *orgs))
    return SigningIdentity(chain_pem, key_pem, alg, self_issued, cert, key, tsa_url, subject)


def resolve_identity(sign_cert: str | Path | None = None, sign_key: str | Path | None = None) -> SigningIdentity:
    """``sign_cert``/``sign_key``, else the environment's, else the per-installation identity (made if needed)."""
    cert = sign_cert or os.environ.get(ENV_CERT) or None
    key = sign_key or os.environ.get(ENV_KEY) or None
    if cert is None and key is None:
        identity = default_identity()
    elif cert is None or key is None:
        raise InputError("--sign-cert and --sign-key go together (or TALKINGHEAD_SIGN_CERT and TALKINGHEAD_SIGN_KEY)")
    else:
        identity = load_identity(cert, key, tsa_url=os.environ.get(ENV_TSA) or None)
    _check_signs(identity)
    return identity


_CHECKED: set[tuple[bytes, bytes]] = set()


def _check_signs(identity: SigningIdentity) -> None:
    """Sign a tiny PNG once per identity, so a certificate C2PA refuses fails before any compute, not after."""
    token = (hashlib.sha256(identity.cert_chain).digest(), hashlib.sha256(identity.private_key).digest())
    if token in _CHECKED:
        return
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert ok
    try:
        _sign_stream(identity, {"claim_generator_info": [_generator()], "assertions": [_actions()]}, "image/png",
                     io.BytesIO(png.tobytes()), io.BytesIO())
    except Exception as exc:  # c2pa raises its own error types (a C2paError hierarchy)
        raise InputError(f"cannot sign with the certificate {identity.cert_path}: {_one_line(exc)}") from None
    _CHECKED.add(token)


# -------------------------------------------------------------------------------------------------- signing


def _generator() -> dict[str, str]:
    return {"name": "talkinghead", "version": __version__}


def _actions() -> dict[str, Any]:
    return {"label": "c2pa.actions", "data": {"actions": [{
        "action": "c2pa.created",
        "digitalSourceType": DIGITAL_SOURCE_TYPE,
        "softwareAgent": _generator(),
        "description": "talking-head video generated by a neural network from a still photo and another "
                       "video's face motion",
    }]}}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _sign_stream(identity: SigningIdentity, manifest: dict[str, Any], mime: str, src: Any, dst: Any) -> bytes:
    c2pa = _c2pa()
    info = c2pa.C2paSignerInfo(identity.alg, identity.cert_chain, identity.private_key, identity.tsa_url)
    signer = c2pa.Signer.from_info(info)
    try:
        with c2pa.Builder(manifest, context=_context()) as builder:
            return builder.sign(signer, mime, src, dst)
    finally:
        signer.close()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_record(model: Any = None, model_file: str | Path | None = None) -> dict[str, Any] | None:
    """What the manifest says about the model: the file's sha256 (when a file was given) and the sha256 of the
    weights that rendered (generator, embedder and a fine-tuned person's ψ, in state-dict order)."""
    rec: dict[str, Any] = {}
    if model_file is not None and Path(model_file).is_file():
        rec["file"] = Path(model_file).name
        rec["file_sha256"] = file_sha256(model_file)
    if model is not None and getattr(model, "generator", None) is not None:
        h = hashlib.sha256()
        for part in ("generator", "embedder"):
            net = getattr(model, part, None)
            if net is None:
                continue
            for k, v in net.state_dict().items():
                h.update(f"{part}.{k}".encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        psi = getattr(model, "psi", None)
        if psi is not None:
            h.update(b"person.psi")
            h.update(psi.detach().cpu().contiguous().numpy().tobytes())
        rec["weights_sha256"] = h.hexdigest()
        rec["kind"] = getattr(model, "kind", "model")
    return rec or None


@dataclass
class SignStats:
    files: int = 0
    seconds: float = 0.0
    bytes_added: int = 0


@dataclass
class ContentCredentials:
    """Signs output files with one identity and one set of claims (one per rendered video)."""

    identity: SigningIdentity
    payload: Payload | None = None
    """The watermark payload in the content (``None``: not watermarked, no soft-binding assertion)."""
    model: dict[str, Any] | None = None
    consent: bool = False
    """Whether the user declared the person's consent to the use of their likeness (recorded, never implied)."""
    stats: SignStats = field(default_factory=SignStats)

    def manifest(self, title: str | None = None) -> dict[str, Any]:
        assertions: list[dict[str, Any]] = [_actions()]
        if self.payload is not None:
            assertions.append({"label": "c2pa.soft-binding", "data": {
                "alg": WATERMARK_ALG,
                "name": "talkinghead invisible watermark (check with `talkinghead verify`)",
                "blocks": [{"scope": {}, "value": base64.b64encode(np.packbits(self.payload.to_bits()).tobytes()).decode()}],
                "pad": [0],
            }})
        if self.model is not None:
            assertions.append({"label": MODEL_LABEL, "data": self.model})
        assertions.append({"label": CONSENT_LABEL, "data": {
            "likeness_consent_declared": bool(self.consent),
            "statement": ("the user declared that the person shown consented to the use of their likeness"
                          if self.consent else "no consent to the use of the person's likeness was declared"),
        }})
        if self.payload is not None:
            assertions.append({"label": "talkinghead.watermark", "data": {
                "payload": str(self.payload), "id": self.payload.id_hex, "algorithm": WATERMARK_ALG}})
        m: dict[str, Any] = {"claim_generator_info": [_generator()], "assertions": assertions}
        if title:
            m["title"] = title
        return m

    def sign_file(self, path: str | Path, title: str | None = None) -> None:
        """Embed a signed manifest into ``path`` (an .mp4, .mov, .png, .jpg, ...), replacing it atomically."""
        path = Path(path)
        mime = MIME_TYPES.get(path.suffix.lower())
        if mime is None:
            raise CredentialsError(f"cannot sign {path.name}: Content Credentials support "
                                   f"{', '.join(sorted(MIME_TYPES))} here")
        t0 = time.perf_counter()
        before = path.stat().st_size
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.c2pa.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with open(path, "rb") as src, open(tmp, "w+b") as dst:
                self.sign_stream(mime, src, dst, title or path.name)
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self.stats.files += 1
        self.stats.seconds += time.perf_counter() - t0
        self.stats.bytes_added += path.stat().st_size - before

    def sign_stream(self, mime: str, src: Any, dst: Any, title: str | None = None) -> None:
        try:
            _sign_stream(self.identity, self.manifest(title), mime, src, dst)
        except Exception as exc:  # c2pa's own error types
            raise CredentialsError(f"signing the Content Credentials failed: {_one_line(exc)} "
                                   "(--no-credentials writes the file without them)") from None


def content_credentials(payload: Payload | None = None, model: Any = None, model_file: str | Path | None = None,
                        consent: bool = False, sign_cert: str | Path | None = None,
                        sign_key: str | Path | None = None) -> ContentCredentials:
    """Credentials for one output, with its identity loaded (and checked) now: errors come before compute."""
    return ContentCredentials(resolve_identity(sign_cert, sign_key), payload, model_record(model, model_file),
                              consent)


# -------------------------------------------------------------------------------------------------- reading

_CONTENT_HASH_CODES = ("assertion.dataHash.", "assertion.bmffHash.", "assertion.boxesHash.",
                       "assertion.collectionHash.")


@dataclass(frozen=True)
class CredentialsReport:
    """What a file's C2PA manifest says, and whether it still holds."""

    present: bool
    error: str | None = None
    """Why the manifest could not be read (corrupt, unsupported format), one line; ``None`` otherwise."""
    signature: str = "none"
    """``valid``, ``invalid``, ``unknown`` (not checked) or ``none`` (no manifest)."""
    content: str = "none"
    """``matching`` (the hash over the content checks out), ``altered`` (changed after signing), ``unknown``
    (no content hash was checked) or ``none`` (no manifest)."""
    manifest_intact: bool = True
    """False when the manifest's own assertions were changed after signing."""
    trusted: bool = False
    """True only when the signer chains to a trust anchor c2pa knows (never for the self-issued default)."""
    self_issued: bool = False
    signer: str = ""
    issuer: str = ""
    generator: str = ""
    actions: tuple[str, ...] = ()
    source_type: str = ""
    synthetic: bool = False
    """The manifest declares AI-generated content (its digital source type)."""
    watermark: str | None = None
    """The watermark payload the manifest names (soft binding), e.g. ``talkinghead 0.1.0 id 1a2b3c4``."""
    watermark_id: str | None = None
    model: dict[str, Any] | None = None
    consent: bool | None = None
    failures: tuple[str, ...] = ()
    """Every validation failure code c2pa reported (``signingCredential.untrusted`` included)."""
    state: str = ""
    """c2pa's validation state: ``Invalid``, ``Valid`` (signature and hashes good) or ``Trusted``."""
    manifest: dict[str, Any] | None = field(default=None, repr=False)
    """The active manifest as c2pa's Reader returns it."""

    @property
    def valid(self) -> bool:
        return self.present and self.error is None and self.signature == "valid" and self.content == "matching" \
            and self.manifest_intact

    def summary(self) -> str:
        """One line for humans."""
        if not self.present:
            return "manifest: none"
        if self.error is not None:
            return f"manifest: present but unreadable ({self.error})"
        parts = [f"signature {self.signature}"]
        if self.content == "altered":
            parts.append("content ALTERED after signing (hash mismatch)")
        elif self.content == "matching":
            parts.append("content hash matches")
        if not self.manifest_intact:
            parts.append("manifest assertions altered")
        trust = "trusted" if self.trusted else ("self-issued, untrusted" if self.self_issued else "untrusted")
        parts.append(f"signer {self.signer or '?'} ({trust})")
        claims = []
        if self.actions:
            src = self.source_type.rsplit("/", 1)[-1] if self.source_type else "no source type"
            claims.append(f"{'/'.join(self.actions)} {src}" + (f" by {self.generator}" if self.generator else ""))
        if self.watermark:
            claims.append(f"watermark {self.watermark}")
        if self.model and (self.model.get("file_sha256") or self.model.get("weights_sha256")):
            digest = self.model.get("file_sha256") or self.model.get("weights_sha256")
            claims.append(f"model {self.model.get('file', 'weights')} sha256 {str(digest)[:12]}…")
        if self.consent is not None:
            claims.append("likeness consent " + ("declared" if self.consent else "not declared"))
        if claims:
            parts.append("claims: " + ", ".join(claims))
        return "manifest: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"present": self.present, "error": self.error, "signature": self.signature, "content": self.content,
                "manifest_intact": self.manifest_intact, "valid": self.valid, "state": self.state,
                "trusted": self.trusted, "self_issued": self.self_issued, "signer": self.signer,
                "issuer": self.issuer, "generator": self.generator, "actions": list(self.actions),
                "digital_source_type": self.source_type, "synthetic": self.synthetic, "watermark": self.watermark,
                "model": self.model, "likeness_consent_declared": self.consent, "failures": list(self.failures),
                "manifest": self.manifest}


def _codes(entries: Any) -> list[str]:
    return [str(e.get("code", "")) for e in (entries or []) if isinstance(e, dict)]


def _parse(store: dict[str, Any]) -> CredentialsReport:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest", ""), {})
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    success = _codes(results.get("success"))
    failures = _codes(results.get("failure")) or _codes(store.get("validation_status"))
    if any(c.startswith("claimSignature.") for c in failures):
        signature = "invalid"
    elif "claimSignature.validated" in success:
        signature = "valid"
    else:
        signature = "unknown"
    if any(c.startswith(_CONTENT_HASH_CODES) and c.endswith("mismatch") for c in failures):
        content = "altered"
    elif any(c.startswith(_CONTENT_HASH_CODES) and c.endswith(".match") for c in success):
        content = "matching"
    else:
        content = "unknown"  # no hard binding was checked
    intact = not any(c.startswith("assertion.hashedURI.") or c.startswith("assertion.missing") for c in failures)
    sig = active.get("signature_info") or {}
    actions: list[str] = []
    source_type = ""
    watermark = watermark_id = None
    model = None
    consent = None
    for a in active.get("assertions") or []:
        label, data = str(a.get("label", "")), a.get("data") or {}
        if label.startswith("c2pa.actions"):
            for act in data.get("actions") or []:
                actions.append(str(act.get("action", "")))
                source_type = source_type or str(act.get("digitalSourceType") or "")
        elif label == "talkinghead.watermark":
            watermark, watermark_id = data.get("payload"), data.get("id")
        elif label == MODEL_LABEL:
            model = data
        elif label == CONSENT_LABEL:
            consent = bool(data.get("likeness_consent_declared"))
    gen = (active.get("claim_generator_info") or [{}])[0]
    generator = " ".join(str(gen.get(k)) for k in ("name", "version") if gen.get(k))
    issuer = str(sig.get("issuer") or "")
    return CredentialsReport(
        present=True, signature=signature, content=content, manifest_intact=intact,
        trusted="signingCredential.trusted" in success, self_issued=issuer == SELF_ISSUED_ORG,
        signer=str(sig.get("common_name") or issuer), issuer=issuer, generator=generator, actions=tuple(actions),
        source_type=source_type, synthetic=source_type in AI_SOURCE_TYPES, watermark=watermark,
        watermark_id=watermark_id, model=model, consent=consent, failures=tuple(failures),
        state=str(store.get("validation_state") or ""), manifest=active or None,
    )


def read_credentials(path: str | Path) -> CredentialsReport:
    """Read and validate the C2PA manifest of a file (offline). Never raises for a bad manifest: a corrupt one
    gives ``present=True`` with ``error`` set; a file without one (or of a format C2PA does not cover) gives
    ``present=False``."""
    c2pa = _c2pa()
    try:
        reader = c2pa.Reader.try_create(str(path), context=_context())
    except c2pa.C2paError.NotSupported:
        return CredentialsReport(present=False)
    except c2pa.C2paError as exc:
        return CredentialsReport(present=True, error=_one_line(exc), signature="invalid")
    except OSError as exc:
        return CredentialsReport(present=False, error=f"cannot read: {exc.strerror or exc}")
    if reader is None:
        return CredentialsReport(present=False)
    try:
        with reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError, ValueError) as exc:
        return CredentialsReport(present=True, error=_one_line(exc), signature="invalid")
    return _parse(store)
