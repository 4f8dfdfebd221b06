"""Xet against LFS on the same hub, one large file: upload, download, a re-upload with a small change.

    .venv/bin/python -m bench.bench_xet [--size-mib 1024]

Each client runs in its own process (huggingface_hub reads HF_HUB_DISABLE_XET at import): upload_file and
hf_hub_download with Xet on, then the same with Xet off (LFS, plain resolve), beside the copy limit of this
machine: `sha256sum` then `cp` of the same file (what an upload must at least do: read and hash it, write it
once more). The re-upload changes 1 MiB in the middle of the file (aim: at most 5 % of it sent) and uploads it from a fresh HF_HOME (no local chunk cache), so only the hub's dedupe
answer spares the unchanged chunks: it reports the xorb bytes the hub received. Server RSS is sampled every
20 ms throughout, beside its RSS at rest (aim: under 200 MiB more).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_transfer import RssSampler
from bench.hubproc import start_hub

CLIENT = """
import json, sys, time
from huggingface_hub import HfApi, hf_hub_download
op, repo, path, dest = sys.argv[1:5]
t = time.perf_counter()
if op == "up":
    HfApi().upload_file(path_or_fileobj=path, path_in_repo=dest, repo_id=repo)
else:
    hf_hub_download(repo, dest, cache_dir=path)
print(json.dumps(time.perf_counter() - t))
"""


def run_client(endpoint: str, token: str, home: Path, *, xet: bool, args: list[str]) -> float:
    """Seconds one client operation took, in a process of its own."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    env.update(HF_ENDPOINT=endpoint, HF_TOKEN=token, HF_HOME=str(home), HF_HUB_DISABLE_PROGRESS_BARS="1")
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    out = subprocess.run([sys.executable, "-c", CLIENT, *args], env=env, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def copy_limit(src: Path, dest: Path) -> float:
    """Seconds `sha256sum src` then `cp src dest`, synced, take (the source in the page cache, as for the clients)."""
    os.sync()  # the source was just written: its own writeback is not part of the copy
    t = time.perf_counter()
    subprocess.run(["sha256sum", str(src)], check=True, capture_output=True)
    subprocess.run(["cp", str(src), str(dest)], check=True)
    os.sync()
    return time.perf_counter() - t


def main() -> None:
    """Run the comparison and print one line per measure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vitrine-bench-xet-"))
    src = work / "big.bin"
    with open(src, "wb") as fh:
        fh.write(b"\0")  # a .bin whose first byte is no pickle opcode: the hub's pickle scan stops at once
        for _ in range(args.size_mib):
            fh.write(os.urandom(1 << 20))
    other = work / "other.bin"  # LFS would skip a file the hub already has: give it bytes of its own
    with open(src, "rb") as fh, open(other, "wb") as out:
        out.write(b"\x01")
        fh.seek(1)
        shutil.copyfileobj(fh, out)
    token = "hf_bench_admin"
    server, endpoint = start_hub(work / "home", token)
    idle_rss_mib = int(Path(f"/proc/{server.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
    sampler = RssSampler(server.pid)
    sampler.start()
    auth = {"authorization": f"Bearer {token}"}
    try:
        httpx.post(f"{endpoint}/api/repos/create", json={"name": "big", "organization": "bench"}, headers=auth)

        def received() -> int:
            return int(httpx.get(f"{endpoint}/api/vitrine/stats", headers=auth).json().get("xet_xorb_bytes_received", 0))

        size = src.stat().st_size
        results = {
            "sha256sum_cp_s": copy_limit(src, work / "copy.bin"),
            "xet_upload_s": run_client(endpoint, token, work / "hf-a", xet=True, args=["up", "bench/big", str(src), "x.bin"]),
            "lfs_upload_s": run_client(endpoint, token, work / "hf-b", xet=False, args=["up", "bench/big", str(other), "l.bin"]),
            "xet_download_s": run_client(endpoint, token, work / "hf-c", xet=True, args=["down", "bench/big", str(work / "c1"), "x.bin"]),
            "http_download_s": run_client(endpoint, token, work / "hf-d", xet=False, args=["down", "bench/big", str(work / "c2"), "x.bin"]),
        }
        with open(src, "r+b") as fh:
            fh.seek(size // 2)
            fh.write(os.urandom(1 << 20))  # random: a run of one byte would compress to nearly nothing
        before = received()
        results["xet_reupload_s"] = run_client(endpoint, token, work / "hf-e", xet=True,
                                               args=["up", "bench/big", str(src), "x.bin"])
        results["reupload_bytes_sent"] = received() - before
        results["server_idle_rss_mib"] = idle_rss_mib
        results["server_max_rss_mib"] = sampler.max_kib / 1024
        for key, value in results.items():
            print(f"{key:24} {value:12.2f}" if isinstance(value, float) else f"{key:24} {value:12d}")
        print(f"{'upload MiB/s (xet, lfs)':24} {size / 2**20 / results['xet_upload_s']:8.1f} "
              f"{size / 2**20 / results['lfs_upload_s']:8.1f}")
        limit = results["sha256sum_cp_s"]
        print(f"ratios: xet upload / copy limit {limit / results['xet_upload_s']:.2f}x, lfs upload / copy limit "
              f"{limit / results['lfs_upload_s']:.2f}x, xet download / plain resolve "
              f"{results['http_download_s'] / results['xet_download_s']:.2f}x (time ratios, higher is faster)")
        print(f"re-upload with 1 MiB changed sent {results['reupload_bytes_sent'] / size:.2%} of the file (aim <= 5%); "
              f"server RSS {results['server_max_rss_mib'] - idle_rss_mib:.0f} MiB above idle (aim < 200)")
    finally:
        sampler.running = False
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
