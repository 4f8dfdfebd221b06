"""Upload and download of one large file through Vitrine vs physical peers, in one run.

    .venv/bin/python -m bench.bench_transfer [--size-mib 1024]

Download: hf_hub_download from Vitrine vs the same client code (huggingface_hub's http_get) reading the
same file from nginx on loopback; ratio = nginx time / vitrine time (aim >= 0.8).
Upload: HfApi.upload_file to Vitrine vs `sha256sum` + `cp` of the file; ratio = peer time / vitrine time
(aim >= 0.5). Server RSS is sampled every 20 ms during both (aim < 200 MiB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.hubproc import free_port, start_hub

ROOT = Path(__file__).resolve().parent.parent


class RssSampler(threading.Thread):
    """Max RSS of a process, sampled from /proc."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.max_kib, self.running = pid, 0, True

    def run(self) -> None:
        while self.running:
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.max_kib = max(self.max_kib, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.02)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def drop_cache(path: Path) -> None:
    # Keep the comparison about the servers, not about which side found the file in the page cache: warm both.
    with open(path, "rb") as fh:
        while fh.read(16 << 20):
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vitrine-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "big.bin"
    if not src.exists() or src.stat().st_size != args.size_mib << 20:
        print(f"writing {args.size_mib} MiB of random data to {src}")
        with open(src, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(1 << 20))
    size = src.stat().st_size

    token = "hf_bench_admin"
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    server, endpoint = start_hub(home, token)
    sampler = RssSampler(server.pid)
    sampler.start()

    os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HOME=str(work / "hf"))
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.file_download import http_get

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo("bench/big")
    drop_cache(src)
    t_upload = timed(lambda: api.upload_file(path_or_fileobj=str(src), path_in_repo="big.bin", repo_id="bench/big"))
    dest = work / "copy.bin"
    drop_cache(src)
    t_peer_upload = timed(lambda: (subprocess.run(["sha256sum", str(src)], check=True, capture_output=True),
                                   shutil.copyfile(src, dest)))
    dest.unlink()

    nginx_port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""
daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; tcp_nopush on;
  server {{ listen 127.0.0.1:{nginx_port}; root {work}; }} }}
""")
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])
    time.sleep(0.5)
    try:
        results_dl = []
        for attempt in range(2):
            cache = work / f"hf-cache-{attempt}"
            shutil.rmtree(cache, ignore_errors=True)
            t_dl = timed(lambda: hf_hub_download("bench/big", "big.bin", endpoint=endpoint, cache_dir=cache))
            out = work / "nginx-copy.bin"
            with open(out, "wb") as fh:
                t_nginx = timed(lambda: http_get(f"http://127.0.0.1:{nginx_port}/big.bin", fh))
            assert out.stat().st_size == size
            out.unlink()
            shutil.rmtree(cache, ignore_errors=True)
            results_dl.append((t_dl, t_nginx))
        # The same comparison with a client that is not ours nor huggingface_hub's: curl.
        curl_v = timed(lambda: subprocess.run(["curl", "-sf", "-o", str(out), f"{endpoint}/bench/big/resolve/main/big.bin"],
                                              check=True))
        curl_n = timed(lambda: subprocess.run(["curl", "-sf", "-o", str(out), f"http://127.0.0.1:{nginx_port}/big.bin"],
                                              check=True))
        out.unlink()
    finally:
        nginx.send_signal(signal.SIGTERM)
        nginx.wait()
    sampler.running = False
    sampler.join()
    server.send_signal(signal.SIGTERM)
    server.wait()

    mib = size / (1 << 20)
    t_dl, t_nginx = min(results_dl, key=lambda r: r[0])[0], min(r[1] for r in results_dl)
    print(f"\nfile: {mib:.0f} MiB")
    print(f"download  vitrine hf_hub_download {t_dl:6.2f}s ({mib / t_dl:7.1f} MiB/s) | nginx http_get {t_nginx:6.2f}s "
          f"({mib / t_nginx:7.1f} MiB/s) | ratio nginx/vitrine time = {t_nginx / t_dl:.2f} (aim >= 0.8)")
    print(f"download  curl from vitrine       {curl_v:6.2f}s ({mib / curl_v:7.1f} MiB/s) | curl from nginx {curl_n:6.2f}s "
          f"({mib / curl_n:7.1f} MiB/s) | ratio nginx/vitrine time = {curl_n / curl_v:.2f}")
    print(f"upload    vitrine upload_file     {t_upload:6.2f}s ({mib / t_upload:7.1f} MiB/s) | sha256sum+cp {t_peer_upload:6.2f}s "
          f"({mib / t_peer_upload:7.1f} MiB/s) | ratio peer/vitrine time = {t_peer_upload / t_upload:.2f} (aim >= 0.5)")
    print(f"server peak RSS during both: {sampler.max_kib / 1024:.0f} MiB (aim < 200 MiB)")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
