"""Upload and download of one large file through a hub on S3 (proxied, presigned) vs boto3 straight to S3, in one run.

    flock /tmp/vitrine-bench.lock .venv/bin/python -m bench.bench_s3 [--size-mib 1024]

One SeaweedFS server (`weed server -s3` on loopback), a bucket per path, the same file each time:
- proxied: a hub with `VITRINE_S3_PRESIGN=off`, the bytes pass through it both ways;
- presigned: a hub with `VITRINE_S3_PRESIGN=all`: multipart parts (`VITRINE_S3_PRESIGN_PART_MB`, 128 MiB) PUT one
  after another straight to the bucket, then the hub completes the upload, re-hashes it there and keeps it in place
  (the blob's key becomes a pointer); downloads are a 302 to the bucket;
- boto3: `upload_file` / `download_file` with boto3's defaults (parallel multipart, ranged GETs), no hub at all.
Hub uploads are `HfApi.create_commit` with the sha256 computed beforehand (huggingface_hub hashes a file as it builds
the operation; boto3 hashes nothing), over the LFS batch API (`HF_HUB_DISABLE_XET=1`); downloads are
`hf_hub_download`. Ratio = boto3 time / hub time (aim >= 0.8). The presigned upload's verification is also timed
alone, on the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.hubproc import cpu_seconds, start_hub

MiB = 1024 * 1024


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


def main() -> None:
    """Run the comparison and print it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    os.environ["HF_HUB_DISABLE_XET"] = "1"  # read by huggingface_hub at import: the LFS path, not Xet
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from boto3.s3.transfer import TransferConfig
    from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

    from registry.s3store import S3BlobStore
    from tests.backends import S3_KEYS, start_seaweedfs

    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-s3-"))
    weed = start_seaweedfs(work / "weed")
    hubs = []
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
        size = src.stat().st_size
        s3 = weed.client()
        os.environ.update({"AWS_ENDPOINT_URL": weed.endpoint, **S3_KEYS})
        results: dict[str, tuple[float, float]] = {}
        cpu = CpuLog(weed.proc.pid)

        for mode in ("off", "all"):
            bucket = weed.create_bucket()
            os.environ.update(VITRINE_STORAGE_URL=f"s3://{bucket}/blobs", VITRINE_S3_PRESIGN=mode)
            token = "hf_bench_s3_admin"
            proc, url = start_hub(work / f"home-{mode}", token)
            hubs.append(proc)
            api = HfApi(endpoint=url, token=token)
            api.create_repo("bench/s3")
            op = CommitOperationAdd("big.dat", str(src))  # hashed here, before the clock starts
            label = "proxied" if mode == "off" else "presigned"
            up = cpu.timed(f"{label} upload", lambda: api.create_commit("bench/s3", operations=[op],
                                                                        commit_message="big"), proc.pid)
            out, got = work / f"dl-{mode}", []
            down = cpu.timed(f"{label} download", lambda: got.append(hf_hub_download(
                "bench/s3", "big.dat", endpoint=url, token=token, cache_dir=str(out))), proc.pid)
            assert Path(got[0]).stat().st_size == size
            shutil.rmtree(out)
            results[label] = (up, down)

        bucket = weed.create_bucket()
        config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
        up = cpu.timed("boto3 upload", lambda: s3.upload_file(str(src), bucket, "big.dat", Config=config))
        dst = work / "dl-boto3.dat"
        down = cpu.timed("boto3 download", lambda: s3.download_file(bucket, "big.dat", str(dst), Config=config))
        assert dst.stat().st_size == size
        dst.unlink()
        results["boto3"] = (up, down)

        # The presigned upload's verification alone, on an object completed where the client's parts landed.
        store = S3BlobStore(bucket, "adopt", cache_dir=work / "cache", cache_bytes=MiB, part_bytes=8 * MiB)
        h = hashlib.sha256()
        with open(src, "rb") as fh:
            while chunk := fh.read(8 * MiB):
                h.update(chunk)
        oid = h.hexdigest()
        name = uuid.uuid4().hex
        s3.upload_file(str(src), bucket, store.upload_key(oid, name), Config=config)
        adopt = cpu.timed("presigned verify", lambda: store.uploads.adopt_upload(name, expected_oid=oid, expected_size=size))
        assert store.exists(oid) and store.size(oid) == size

        mib = size / MiB
        base_up, base_down = results["boto3"]
        print(f"\nfile: {mib:.0f} MiB, SeaweedFS {weed.endpoint}, 1-min load at the end: {os.getloadavg()[0]:.2f}")
        for name_, (up, down) in results.items():
            print(f"{name_:10s} upload {up:6.2f}s ({mib / up:7.1f} MiB/s, x{base_up / up:4.2f} of boto3) | "
                  f"download {down:6.2f}s ({mib / down:7.1f} MiB/s, x{base_down / down:4.2f} of boto3)")
        print(f"presigned verification alone (re-hash in the bucket, then a pointer; no copy): {adopt:5.2f}s")
        print("\nwhere the time goes (client: this process; the hub's verify is timed in this process):")
        for line in cpu.lines:
            print(f"  {line}")
    finally:
        for proc in hubs:
            proc.terminate()
            proc.wait(timeout=30)
        weed.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
