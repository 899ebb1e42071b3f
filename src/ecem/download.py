"""Fetch a public input (MELD.Raw, the ECEM JSON) once, verify its checksum, unpack it.

Used only when the config gives a URL and the input is absent; never by the demo or the tests.
The file is streamed to a temporary name and renamed only after its SHA-256 matches, so an
interrupted download is never mistaken for a complete one. Offline, the error says what to do.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ecem.artifacts import atomic_path
from ecem.provenance import sha256_file

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A download failed or its checksum did not match."""


def fetch(url: str, dest: str | Path, sha256: str | None) -> Path:
    """Download `url` to `dest` unless it is already there with the right checksum."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(dest) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tmp.open("wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
            got = sha256_file(tmp)
            if sha256 is not None and got != sha256:
                raise DownloadError(f"{url}: SHA-256 {got} does not match the configured {sha256}")
            if sha256 is None:
                log.warning("%s has no configured sha256; downloaded file hashes to %s", url, got)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DownloadError(
            f"could not download {url} ({exc}). If this machine is offline, download it elsewhere "
            f"and place it at {dest}, or point the config at an existing copy."
        ) from exc
    return dest


def unpack(archive: str | Path, dest_dir: str | Path) -> None:
    """Extract a tar archive, then any tar archives it contained (MELD.Raw nests one per split)."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest_dir, filter="data")
    for inner in sorted(dest_dir.rglob("*.tar.gz")):
        with tarfile.open(inner) as tar:
            tar.extractall(inner.parent, filter="data")
        inner.unlink()
    # Archives often wrap everything in one top folder (MELD.Raw/): lift its contents up.
    entries = list(dest_dir.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        for item in entries[0].iterdir():
            shutil.move(str(item), dest_dir / item.name)
        entries[0].rmdir()


def unpack_into(archive: str | Path, root: str | Path, expected: list[str]) -> None:
    """Unpack `archive` beside `root`, check that it holds every `expected` path (given under
    `root`), then move those into place, so an interrupted or wrong archive leaves no partial
    input behind for a later run to trust."""
    root = Path(root)
    staging = root.with_name(root.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    unpack(archive, staging)
    relative = [Path(p).relative_to(root) for p in expected]
    missing = [str(r) for r in relative if not (staging / r).exists()]
    if missing:
        raise DownloadError(f"{archive} unpacked without {missing}; is it MELD.Raw?")
    for rel in relative:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging / rel), root / rel)
    shutil.rmtree(staging)
