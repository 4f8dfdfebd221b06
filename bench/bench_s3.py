"""Upload and download of one large file through a hub on S3 (proxied, presigned) vs boto3 straight to S3, in one run.

    flock /tmp/vitrine-bench.lock .venv/bin/python -m bench.bench_s3 [--size-mib 1024]

One SeaweedFS server (`weed server -s3` on loopback), a bucket per path, the same file each time:
- proxied: a hub with `VITRINE_S3_PRESIGN=off`, the bytes pass through it both ways;
- presigned: a hub with `VITRINE_S3_PRESIGN=all`: multipart parts PUT straight to the bucket, then the hub re-hashes
  the object there while copying it into place; downloads are a 302 to the bucket;
- boto3: `upload_file` / `download_file` with boto3's defaults (parallel multipart, ranged GETs), no hub at all.
Hub uploads are `HfApi.create_commit` with the sha256 computed beforehand (huggingface_hub hashes a file as it builds
the operation; boto3 hashes nothing), over the LFS batch API (`HF_HUB_DISABLE_XET=1`); downloads are
`hf_hub_download`. Ratio = boto3 time / hub time (aim >= 0.8). `adopt` splits the presigned upload's verification
into its re-hash and its server-side copy, each alone, on the same object.
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

from bench.hubproc import start_hub

MiB = 1024 * 1024


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


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

        for mode in ("off", "all"):
            bucket = weed.create_bucket()
            os.environ.update(VITRINE_STORAGE_URL=f"s3://{bucket}/blobs", VITRINE_S3_PRESIGN=mode)
            token = "hf_bench_s3_admin"
            proc, url = start_hub(work / f"home-{mode}", token)
            hubs.append(proc)
            api = HfApi(endpoint=url, token=token)
            api.create_repo("bench/s3")
            op = CommitOperationAdd("big.dat", str(src))  # hashed here, before the clock starts
            up = timed(lambda: api.create_commit("bench/s3", operations=[op], commit_message="big"))
            out, got = work / f"dl-{mode}", []
            down = timed(lambda: got.append(hf_hub_download("bench/s3", "big.dat", endpoint=url, token=token,
                                                            cache_dir=str(out))))
            assert Path(got[0]).stat().st_size == size
            shutil.rmtree(out)
            results["proxied" if mode == "off" else "presigned"] = (up, down)

        bucket = weed.create_bucket()
        config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
        up = timed(lambda: s3.upload_file(str(src), bucket, "big.dat", Config=config))
        dst = work / "dl-boto3.dat"
        down = timed(lambda: s3.download_file(bucket, "big.dat", str(dst), Config=config))
        assert dst.stat().st_size == size
        dst.unlink()
        results["boto3"] = (up, down)

        # The presigned upload's verification, taken apart on one object at a temp key.
        store = S3BlobStore(bucket, "adopt", cache_dir=work / "cache", cache_bytes=MiB, part_bytes=8 * MiB)
        h = hashlib.sha256()
        with open(src, "rb") as fh:
            while chunk := fh.read(8 * MiB):
                h.update(chunk)
        oid = h.hexdigest()
        name = uuid.uuid4().hex
        s3.upload_file(str(src), bucket, store.temp_key(name), Config=config)

        def rehash_alone() -> None:
            h = hashlib.sha256()
            for piece in s3.get_object(Bucket=bucket, Key=store.temp_key(name))["Body"].iter_chunks(MiB):
                h.update(piece)
            assert h.hexdigest() == oid

        rehash = timed(rehash_alone)
        copy = timed(lambda: s3.copy({"Bucket": bucket, "Key": store.temp_key(name)}, bucket, "adopt/copy-alone",
                                     Config=TransferConfig(multipart_chunksize=64 * MiB, max_concurrency=16)))
        adopt = timed(lambda: store.adopt(name, expected_oid=oid, expected_size=size))
        assert store.exists(oid)

        mib = size / MiB
        base_up, base_down = results["boto3"]
        print(f"\nfile: {mib:.0f} MiB, SeaweedFS {weed.endpoint}, 1-min load at the end: {os.getloadavg()[0]:.2f}")
        for name_, (up, down) in results.items():
            print(f"{name_:10s} upload {up:6.2f}s ({mib / up:7.1f} MiB/s, x{base_up / up:4.2f} of boto3) | "
                  f"download {down:6.2f}s ({mib / down:7.1f} MiB/s, x{base_down / down:4.2f} of boto3)")
        print(f"presigned verification: re-hash from the bucket alone {rehash:5.2f}s, server-side copy alone "
              f"{copy:5.2f}s, both together (adopt) {adopt:5.2f}s")
    finally:
        for proc in hubs:
            proc.terminate()
            proc.wait(timeout=30)
        weed.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
