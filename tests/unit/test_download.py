"""Download with checksum verification and nested-archive unpacking (file:// URLs, no network)."""

import hashlib
import io
import tarfile

import pytest

from ecem.download import DownloadError, fetch, unpack


def test_fetch_verifies_checksum(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"MELD" * 1000)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    out = fetch(src.as_uri(), tmp_path / "out" / "a.bin", good)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(DownloadError, match="does not match"):
        fetch(src.as_uri(), tmp_path / "out" / "b.bin", "0" * 64)
    assert not (tmp_path / "out" / "b.bin").exists()  # a bad download is never left in place


def test_fetch_offline_error_says_what_to_do(tmp_path):
    with pytest.raises(DownloadError, match="place it at"):
        fetch((tmp_path / "absent.tar.gz").as_uri(), tmp_path / "x.tar.gz", None)


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_unpack_meld_style_nested_archives(tmp_path):
    inner = _tar({"train_splits/dia0_utt0.mp4": b"video"})
    outer = _tar({"MELD.Raw/train.tar.gz": inner, "MELD.Raw/train_sent_emo.csv": b"csv"})
    (tmp_path / "MELD.Raw.tar.gz").write_bytes(outer)
    unpack(tmp_path / "MELD.Raw.tar.gz", tmp_path / "root")
    assert (tmp_path / "root/train_sent_emo.csv").read_bytes() == b"csv"
    assert (tmp_path / "root/train_splits/dia0_utt0.mp4").read_bytes() == b"video"
    assert not list((tmp_path / "root").rglob("*.tar.gz"))
