"""Find the inputs of ``talkinghead prepare``: folders laid out as ``identity/.../clip.ext`` or a CSV manifest.

Each video is one clip. The photos of one identity that sit in one folder form one *photo set* (a clip whose
frames are different photos of the same person, each with its own crop).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from talkinghead.errors import InputError
from talkinghead.io.images import IMAGE_EXTENSIONS
from talkinghead.io.video import VIDEO_EXTENSIONS

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    name = _SAFE.sub("_", text).strip("._")
    return name or "unnamed"


@dataclass(frozen=True)
class SourceItem:
    """One clip to prepare: a video, or the photos of one identity's folder."""

    key: str
    """``identity/name``: unique in the dataset, used for file names, resuming and sharding."""
    identity: str
    kind: str  # "video" or "photos"
    paths: tuple[str, ...]
    split: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]

    def shard(self, n: int) -> int:
        return zlib.crc32(self.key.encode()) % n


def _media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "photos"
    return None


def _from_folder(root: Path) -> list[SourceItem]:
    items: list[SourceItem] = []
    photo_groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    files = []
    for folder, dirs, names in os.walk(root, followlinks=True):  # symlinked folders are common in dataset trees
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(folder) / n for n in names if not n.startswith(".")]
    for path in sorted(files):
        kind = _media_kind(path)
        if kind is None:
            continue
        rel = path.relative_to(root)
        identity = safe_name(rel.parts[0] if len(rel.parts) > 1 else rel.stem)
        below = rel.parts[1:] if len(rel.parts) > 1 else rel.parts
        if kind == "video":
            name = safe_name("__".join((*below[:-1], Path(below[-1]).stem)))
            items.append(SourceItem(f"{identity}/{name}", identity, "video", (str(path),)))
        else:
            group = "__".join(below[:-1])
            photo_groups[(identity, group)].append(str(path))
    for (identity, group), paths in sorted(photo_groups.items()):
        name = safe_name("photos" + (f"__{group}" if group else ""))
        items.append(SourceItem(f"{identity}/{name}", identity, "photos", tuple(sorted(paths))))
    return items


def _from_csv(path: Path) -> list[SourceItem]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from None
    if not rows or "path" not in rows[0] or "identity" not in rows[0]:
        raise InputError(f"manifest {path} needs a header with at least the columns path,identity")
    items: list[SourceItem] = []
    photo_groups: dict[str, list[str]] = defaultdict(list)
    photo_split: dict[str, str | None] = {}
    for row in rows:
        media = Path(row["path"])
        if not media.is_absolute():
            media = path.parent / media
        identity = safe_name(row["identity"])
        kind = _media_kind(media)
        split = row.get("split") or None
        if kind == "photos":
            photo_groups[identity].append(str(media))
            photo_split[identity] = split
            continue
        parts = Path(row["path"]).parts
        after = parts[parts.index(row["identity"]) + 1 :] if row["identity"] in parts[:-1] else ()
        if after:
            name = safe_name("__".join((*after[:-1], Path(after[-1]).stem)))
        else:
            digest = hashlib.sha1(row["path"].encode()).hexdigest()[:8]
            name = safe_name(f"{media.stem}-{digest}")
        extra = {k: v for k, v in row.items() if k not in ("path", "identity", "split") and v}
        items.append(SourceItem(f"{identity}/{name}", identity, "video", (str(media),), split, extra))
    for identity, paths in sorted(photo_groups.items()):
        items.append(SourceItem(f"{identity}/photos", identity, "photos", tuple(sorted(paths)), photo_split[identity]))
    return items


def find_sources(srcs: list[str | Path]) -> list[SourceItem]:
    """All clips under the given folders / CSV manifests / single files, sorted by key, duplicates dropped."""
    found: dict[str, SourceItem] = {}
    for src in srcs:
        p = Path(src)
        if not p.exists():
            raise InputError(f"source {src} does not exist")
        if p.is_dir():
            items = _from_folder(p)
        elif p.suffix.lower() == ".csv":
            items = _from_csv(p)
        else:
            kind = _media_kind(p)
            if kind is None:
                raise InputError(f"source {src} is not a folder, a .csv manifest, a video or an image")
            identity = safe_name(p.parent.name or "unknown")
            items = [SourceItem(f"{identity}/{safe_name(p.stem)}", identity, kind, (str(p),))]
        for item in items:
            found.setdefault(item.key, item)
    return [found[k] for k in sorted(found)]
