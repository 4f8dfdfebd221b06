"""Upload and download of one large file through a hub on S3 (proxied, presigned) vs boto3 straight to S3, in one run.

    flock /tmp/vitrine-bench.lock .venv/bin/python -m bench.bench_s3 [--size-mib 1024] [--rounds 3]

A fresh SeaweedFS server (`weed server -s3` on loopback) per path, the same file each time:
- proxied: a hub with `VITRINE_S3_PRESIGN=off`, the bytes pass through it both ways;
- presigned: a hub with `VITRINE_S3_PRESIGN=all`: multipart parts (`VITRINE_S3_PRESIGN_PART_MB`, 128 MiB) PUT one
  after another straight to the bucket, then the hub completes the upload, re-hashes it there and keeps it in place
  (the blob's key becomes a pointer); downloads are a 302 to the bucket;
- boto3: `upload_file` / `download_file` with boto3's defaults (parallel multipart, ranged GETs), no hub at all, on
  the same server just before each hub path.
Hub uploads are `HfApi.create_commit` with the sha256 computed beforehand (huggingface_hub hashes a file as it builds
the operation; boto3 hashes nothing), over the LFS batch API (`HF_HUB_DISABLE_XET=1`). Downloads are one streamed GET
of the resolve URL (the hub's share), and `hf_hub_download` too: huggingface_hub re-chunks the body into 10 MiB
pieces, whose allocation costs this machine about 2 s of kernel time per GiB in the client, even from the bucket
itself (presigned). Ratio = boto3 time / hub time (aim >= 0.8).

Two limits are timed on the same server, for the presigned upload: huggingface_hub's own part loop (the same presigned
part URLs, one PUT after another, as `_upload_parts_iteratively` sends them) straight to the bucket with no hub, and
the verification alone (the hub reading the completed upload back and hashing it). A presigned upload can be no faster
than their sum: the hub must see the bytes it vouches for, and can read them only once the client has completed.

This machine's speed drifts by 2x within minutes, so `--rounds` (3) repeats everything and the medians are quoted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.hubproc import cpu_seconds, start_hub
from tests.backends import S3_KEYS, SeaweedFS, start_seaweedfs

MiB = 1024 * 1024
PRESIGN_PART_MIB = 128  # VITRINE_S3_PRESIGN_PART_MB's default, which the hubs here run with


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class CpuLog:
    """CPU seconds each process (this one, SeaweedFS, the hub) spends during each timed transfer: where time goes."""

    def __init__(self, weed_pid: int) -> None:
        self.weed_pid = weed_pid
        self.lines: list[str] = []

    def timed(self, label: str, fn: Callable[[], object], hub_pid: int | None = None) -> float:
        """Seconds `fn` takes, noting the CPU time of the processes involved."""
        # Written-but-unflushed pages of earlier transfers (SeaweedFS's volumes, downloaded files) would otherwise be
        # flushed during this one, and the kernel slows every writer while it does: a later path would pay for earlier.
        os.sync()
        pids = {"SeaweedFS": self.weed_pid, **({"hub": hub_pid} if hub_pid is not None else {})}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        mine = os.times()
        took = timed(fn)
        after = os.times()
        used = {"client": after.user + after.system - mine.user - mine.system,
                **{name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}}
        spent = ", ".join(f"{name} {seconds:5.2f}" for name, seconds in used.items())
        self.lines.append(f"{label:20s} {took:6.2f}s wall, CPU s: {spent}")
        return took


def _hub_path(work: Path, src: Path, mode: str, weed: SeaweedFS, cpu: CpuLog) -> tuple[float, float, float]:
    """Upload then download `src` through a fresh hub on `weed` with `VITRINE_S3_PRESIGN=mode`.

    The download is timed twice: with `hf_hub_download` (what a user runs), and as one plain streamed GET of the
    resolve URL into a file, 1 MiB at a time (the hub's own share, without huggingface_hub's 10 MiB re-chunking).
    """
    from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

    os.environ.update(VITRINE_STORAGE_URL=f"s3://{weed.create_bucket()}/blobs", VITRINE_S3_PRESIGN=mode)
    token = "hf_bench_s3_admin"
    home = work / f"home-{mode}"  # one per round: removed below
    proc, url = start_hub(home, token)
    try:
        api = HfApi(endpoint=url, token=token)
        api.create_repo("bench/s3")
        op = CommitOperationAdd("big.dat", str(src))  # hashed here, before the clock starts
        label = "proxied" if mode == "off" else "presigned"
        up = cpu.timed(f"{label} upload", lambda: api.create_commit("bench/s3", operations=[op],
                                                                    commit_message="big"), proc.pid)
        out, got = work / f"dl-{mode}", []
        down = cpu.timed(f"{label} hf_hub_download", lambda: got.append(hf_hub_download(
            "bench/s3", "big.dat", endpoint=url, token=token, cache_dir=str(out))), proc.pid)
        assert Path(got[0]).stat().st_size == src.stat().st_size
        shutil.rmtree(out)
        dst = work / "dl-stream.dat"

        def stream() -> None:
            with httpx.stream("GET", f"{url}/bench/s3/resolve/main/big.dat", follow_redirects=True, timeout=60,
                              headers={"authorization": f"Bearer {token}"}) as r, open(dst, "wb") as fh:
                for chunk in r.iter_raw(MiB):
                    fh.write(chunk)

        plain = cpu.timed(f"{label} plain GET", stream, proc.pid)
        assert dst.stat().st_size == src.stat().st_size
        dst.unlink()
        stats = httpx.get(f"{url}/api/vitrine/stats", headers={"authorization": f"Bearer {token}"}).json()
        assert stats.get("xet_xorbs_received", 0) == 0, "the upload went through Xet, not the LFS path measured here"
        return up, down, plain
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def _boto3_path(work: Path, src: Path, label: str, weed: SeaweedFS, cpu: CpuLog) -> tuple[float, float]:
    """Upload then download `src` with boto3's defaults (8 MiB parts, 10 threads) straight to `weed`."""
    from boto3.s3.transfer import TransferConfig

    s3, bucket, config = weed.client(), weed.create_bucket(), TransferConfig()
    up = cpu.timed(f"{label} upload", lambda: s3.upload_file(str(src), bucket, "big.dat", Config=config))
    dst = work / "dl-boto3.dat"
    down = cpu.timed(f"{label} download", lambda: s3.download_file(bucket, "big.dat", str(dst), Config=config))
    assert dst.stat().st_size == src.stat().st_size
    dst.unlink()
    return up, down


def _presigned_limits(work: Path, src: Path, weed: SeaweedFS, cpu: CpuLog) -> tuple[float, float]:
    """The presigned upload's two limits, on `weed` with no hub: huggingface_hub's part loop, then the verification.

    The parts go to a multipart upload where a hub's would (`store.upload_key`), with the presigned part URLs and the
    part size a hub hands out, PUT one after another by huggingface_hub's own HTTP helper as its
    `_upload_parts_iteratively` does; the upload is completed as the hub would, then verified as the hub does.
    """
    from huggingface_hub.lfs import SliceFileObj
    from huggingface_hub.utils import http_backoff

    from registry.s3store import S3BlobStore

    bucket = weed.create_bucket()
    store = S3BlobStore(bucket, "adopt", cache_dir=work / "cache", cache_bytes=MiB, part_bytes=8 * MiB)
    h = hashlib.sha256()
    with open(src, "rb") as fh:
        while chunk := fh.read(8 * MiB):
            h.update(chunk)
    oid, name, size = h.hexdigest(), uuid.uuid4().hex, src.stat().st_size
    chunk_size = PRESIGN_PART_MIB * MiB
    upload_id, urls = store.uploads.start_multipart(name, oid, -(-size // chunk_size), ttl=600)
    etags: list[str] = []

    def parts() -> None:
        with open(src, "rb") as fh:
            for n, url in enumerate(urls):
                with SliceFileObj(fh, seek_from=chunk_size * n, read_limit=chunk_size) as part:
                    answer = http_backoff("PUT", url, data=part)
                    answer.raise_for_status()
                    etags.append(answer.headers["etag"])

    sent = cpu.timed("client's parts alone", parts)
    assert store.uploads.complete_multipart(name, oid, upload_id, etags)
    took = cpu.timed("verification alone", lambda: store.uploads.adopt_upload(name, expected_oid=oid,
                                                                              expected_size=size))
    assert store.exists(oid) and store.size(oid) == size
    return sent, took


def _median_line(label: str, hub: list[float], peer: list[float], mib: float) -> str:
    """One path's medians over the rounds, and the spread of its per-round ratios."""
    ratios = [p / h for h, p in zip(hub, peer)]
    return (f"{label:25s} {statistics.median(hub):6.2f}s ({mib / statistics.median(hub):6.1f} MiB/s) vs boto3 "
            f"{statistics.median(peer):5.2f}s: x{statistics.median(ratios):4.2f}  "
            f"(rounds: {' '.join(f'{r:4.2f}' for r in ratios)})")


def main() -> None:
    """Run the comparison and print it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.size_mib <= 64 * 1024:
        parser.error("--rounds takes 1 to 20, --size-mib 1 to 65536")
    os.environ["HF_HUB_DISABLE_XET"] = "1"  # read by huggingface_hub at import: the LFS path, not Xet
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.update(S3_KEYS, VITRINE_S3_PRESIGN_PART_MB=str(PRESIGN_PART_MIB))

    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-s3-"))
    try:
        src = work / "big.dat"
        print(f"writing {args.size_mib} MiB of random data to {src}")
        with open(src, "wb") as fh:
            fh.write(b"\0")  # no pickle opcode first
            left = args.size_mib * MiB - 1
            while left:
                n = min(left, 16 * MiB)
                fh.write(os.urandom(n))
                left -= n
        # times[path] lists one figure per round; each hub path's boto3 peer is under the same name + " boto3".
        times: dict[str, list[float]] = {}
        lines: list[str] = []
        for round_no in range(args.rounds):
            # Each path on a SeaweedFS of its own, started fresh, with its boto3 peer run just before on the same
            # server: pairs, since this machine's speed drifts over a run. The peer goes first, so the hub meets the
            # fuller server.
            for n, mode in enumerate(("off", "all")):
                label = "proxied" if mode == "off" else "presigned"
                weed = start_seaweedfs(work / f"weed-{n}")
                try:
                    os.environ["AWS_ENDPOINT_URL"] = weed.endpoint
                    cpu = CpuLog(weed.proc.pid)
                    peer_up, peer_down = _boto3_path(work, src, f"boto3 ({label})", weed, cpu)
                    up, down, plain = _hub_path(work, src, mode, weed, cpu)
                    found = {"upload": up, "upload boto3": peer_up, "download": plain, "download boto3": peer_down,
                             "hf_hub_download": down, "hf_hub_download boto3": peer_down}
                    if mode == "all":
                        found["parts alone"], found["verification alone"] = _presigned_limits(work, src, weed, cpu)
                    for what, seconds in found.items():
                        times.setdefault(f"{label} {what}", []).append(seconds)
                    lines += [f"round {round_no + 1}: {line}" for line in cpu.lines]
                finally:
                    weed.stop()
                    shutil.rmtree(work / f"weed-{n}", ignore_errors=True)

        mib = src.stat().st_size / MiB
        print(f"\nfile: {mib:.0f} MiB, {args.rounds} rounds, a fresh SeaweedFS per path and round, "
              f"1-min load at the end: {os.getloadavg()[0]:.2f}")
        print("ratio = boto3 time / hub time, boto3 run just before on the same server (aim >= 0.8); medians, "
              "then each round's ratio")
        for label in ("proxied", "presigned"):
            for what in ("upload", "download", "hf_hub_download"):
                key = f"{label} {what}"
                print(_median_line(key, times[key], times[f"{key} boto3"], mib))
        parts, verify = (statistics.median(times[f"presigned {k}"]) for k in ("parts alone", "verification alone"))
        up = statistics.median(times["presigned upload"])
        print(f"presigned upload's limits, same servers, no hub: huggingface_hub's part loop {parts:5.2f}s + "
              f"verification {verify:5.2f}s = {parts + verify:5.2f}s; the hub's upload takes x{up / (parts + verify):4.2f} "
              "of that")
        print("\nwhere the time goes (client: this process; the limits are timed in this process):")
        for line in lines:
            print(f"  {line}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
