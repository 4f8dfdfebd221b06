"""`vitrine dataset import` of a generated CSV vs DuckDB's own CSV -> parquet COPY, in one run.

    .venv/bin/python -m bench.bench_import [--rows 10000000] [--repeat 3] [--workdir DIR]

The CSV (id, text, lang, label, score) is generated with DuckDB. DuckDB's own
`COPY (SELECT * FROM read_csv(...)) TO 'x.parquet' (FORMAT parquet)` is timed in this process; then
`vitrine dataset import` (conversion, hashing, upload and commit to a local `vitrine serve` on a free port
with a fresh temp home; a default install, hf_xet included) runs as a child process; the two alternate `--repeat` times and the fastest run of
each counts. Ratio = DuckDB time / import time (aim >= 0.8). The import's
peak RSS comes from getrusage(RUSAGE_CHILDREN) in a small wrapper process whose only child the import is
(aim < 500 MiB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

from bench.hubproc import start_hub

VITRINE = str(Path(sys.executable).parent / "vitrine")
# Runs the import as the only child of a small process, which prints the child's peak RSS (KiB). Measured from
# here instead, the import would inherit the peak of this process (DuckDB's own COPY ran in it): Linux keeps a
# child's high-water mark across fork and exec.
_MEASURED = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")


def generate(path: Path, rows: int) -> None:
    """A CSV of `rows` reviews, written by DuckDB."""
    duckdb.sql(f"""COPY (SELECT i AS id, 'review number ' || i || ' says ' || md5(i::VARCHAR) AS text,
        ['en', 'fr', 'de', 'es'][1 + i % 4] AS lang, (i % 5)::INTEGER AS label, round(random() * 100, 2) AS score
        FROM range({rows}) t(i)) TO '{path}' (HEADER)""")


def copy_with_duckdb(csv: Path, out: Path) -> float:
    """Seconds DuckDB's own COPY takes from the CSV to one parquet file."""
    t = time.perf_counter()
    peer = duckdb.connect()
    peer.execute("SET enable_progress_bar = false")
    peer.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)")
    peer.close()
    return time.perf_counter() - t


def import_to_fresh_hub(csv: Path, rows: int, work: Path, memory_limit: str | None) -> tuple[float, int, str]:
    """Seconds `vitrine dataset import` takes into a hub on a fresh home, its peak RSS (KiB), its first line.

    A fresh home each time: a hub that already holds the shards would skip their upload.
    """
    token = "hf_bench_admin"
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    server, endpoint = start_hub(home, token)
    try:
        client_env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_TOKEN": token,
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HOME": str(work / "hf")}
        client_env.pop("HF_HUB_DISABLE_XET", None)  # the import picks LFS for its shards itself
        cmd = [VITRINE, "dataset", "import", str(csv), "bench/reviews", "--split", "train", "--work-dir", str(work)]
        if memory_limit:
            cmd += ["--memory-limit", memory_limit]
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _MEASURED, *cmd], env=client_env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t
        if out.returncode != 0:
            sys.exit(f"import failed:\n{out.stderr}")
        r = httpx.post(f"{endpoint}/api/vitrine/datasets/bench/reviews/sql", json={"sql": "SELECT count(*) FROM train"},
                       headers={"authorization": f"Bearer {token}"}, timeout=600)
        assert r.json()["rows"] == [[rows]], r.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        shutil.rmtree(home, ignore_errors=True)
    lines = out.stdout.strip().splitlines()
    return elapsed, int(lines[-1]), lines[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternated; the fastest of each counts")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--memory-limit", default=None, help="passed to `vitrine dataset import --memory-limit`")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vitrine-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"reviews-{args.rows}.csv"
    if not csv.exists():
        print(f"writing {args.rows:,} rows to {csv}")
        generate(csv, args.rows)
    size = csv.stat().st_size
    with open(csv, "rb") as fh:  # warm the page cache for both sides
        while fh.read(16 << 20):
            pass

    peer_out = work / "duckdb-copy.parquet"
    peer_times, import_times, peaks = [], [], []
    for _ in range(args.repeat):  # alternated, so a busy moment of the machine does not land on one side only
        peer_times.append(copy_with_duckdb(csv, peer_out))
        elapsed, peak_kib, first_line = import_to_fresh_hub(csv, args.rows, work, args.memory_limit)
        import_times.append(elapsed)
        peaks.append(peak_kib)
    peer_size = peer_out.stat().st_size
    peer_out.unlink()

    mib = size / 2**20
    t_duckdb, t_import = min(peer_times), min(import_times)
    print(first_line)
    print(f"\nCSV: {args.rows:,} rows, {mib:.0f} MiB -> parquet {peer_size / 2**20:.0f} MiB; {os.cpu_count()} cores; "
          f"best of {args.repeat}")
    print(f"duckdb COPY to parquet      {t_duckdb:6.2f}s ({mib / t_duckdb:6.1f} MiB/s)  runs: "
          + " ".join(f"{t:.2f}" for t in peer_times))
    print(f"vitrine dataset import      {t_import:6.2f}s ({mib / t_import:6.1f} MiB/s)  runs: "
          + " ".join(f"{t:.2f}" for t in import_times) + "  (convert + upload + commit)")
    print(f"ratio duckdb/import time = {t_duckdb / t_import:.2f} (aim >= 0.8)")
    print(f"import peak RSS: {max(peaks) / 1024:.0f} MiB (aim < 500 MiB)")


if __name__ == "__main__":
    main()
