"""Inference endpoint throughput and latency: `vitrine endpoint serve` against the peers, at 1, 8 and 32 clients.

A MiniLM-sized text classifier (all-MiniLM-L6-v2's encoder with a fresh 2-class head, built by
`scripts.sample_data.build_sentiment(steps=0)`), served over HTTP on loopback; each peer is a subprocess and the
load generator is wrk (one thread; `apt-get install wrk`) or, without it, this process (asyncio + httpx): C clients
sending requests back to back, after a warm-up; only 200 answers count, failures are reported apart. Peers, in the same run and process tree, one at a time:
- (a) what users write: FastAPI with a sync `def` route calling `transformers.pipeline("text-classification")`
  per request, run by uvicorn;
- (b) LitServe with dynamic batching (`max_batch_size=N`, `batch_timeout=0.005`, one CPU worker), its predict
  calling the same pipeline with `batch_size=len(batch)`;
- Vitrine: `vitrine endpoint serve bench/sentiment --alias production` on a hub home the model was uploaded to
  and promoted in (the hub itself is stopped before timing), with VITRINE_ENDPOINT_MAX_BATCH=N;
- (c) the limit: the same pipeline called in-process on batches of N inputs, no HTTP: inputs/s (run before
  and after the servers; the better of the two counts).
All use the same input texts, torch's default thread count and TOKENIZERS_PARALLELISM=false.
With `--monitoring`, the endpoint is also measured at the most clients with its prediction log at 100% and
a shadow alias mirroring every request (a second copy of the version), against neither (aim >= 0.9x).

    .venv/bin/python -m bench.bench_endpoint --seconds 15 --clients 1,8,32 --max-batch 32 [--monitoring] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.hubproc import VITRINE, free_port, start_hub

TOKEN = "hf_bench_admin_token_0123456789"
REPO = "bench/sentiment"
PEERS = ("fastapi", "litserve", "vitrine")
TITLES = {"fastapi": "(a) FastAPI+pipeline", "litserve": "(b) LitServe batched", "vitrine": "Vitrine endpoint"}


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest rank; NaN when empty."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


async def _load(url: str, texts: list[str], clients: int, seconds: float, warmup: float) -> dict[str, Any]:
    """`clients` concurrent senders, back to back, for `warmup` then `seconds`; rps and latency of the timed part."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        t0 = time.perf_counter()
        t_start, t_end = t0 + warmup, t0 + warmup + seconds

        async def sender(i: int) -> None:
            n = i * 7919
            while True:
                sent = time.perf_counter()
                if sent >= t_end:
                    return
                n += 1
                try:
                    r = await client.post(url, json={"inputs": texts[n % len(texts)]})
                    ok, why = r.status_code == 200, f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"
                got = time.perf_counter()
                if not t_start <= got <= t_end:
                    continue  # finished during the warm-up, or after the window closed
                if ok:
                    latencies.append(got - sent)
                else:
                    failures[why] = failures.get(why, 0) + 1

        await asyncio.gather(*(sender(i) for i in range(clients)))
    latencies.sort()
    return {"rps": len(latencies) / seconds, "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3, "ok": len(latencies),
            "failures": sum(failures.values()), "failure_kinds": failures}


_WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "duration_us": %d, "non2xx": %d, "errors": %d, "p50_us": %d, ' ..
    '"p99_us": %d}\n', summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _load_wrk(url: str, texts: list[str], clients: int, seconds: float, warmup: float) -> dict[str, Any]:
    """The same load with wrk (C, one thread, epoll): a lighter client leaves the CPU to the server under test."""
    work = Path(tempfile.mkdtemp(prefix="vitrine-wrk-"))
    (work / "load.lua").write_text(_WRK_SCRIPT, encoding="utf-8")
    (work / "bodies.jsonl").write_text("".join(json.dumps({"inputs": t}) + "\n" for t in texts), encoding="utf-8")
    env = {**os.environ, "BENCH_BODIES": str(work / "bodies.jsonl")}

    def run(duration: float) -> dict[str, Any]:
        out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(duration))}s", "--timeout", "60s",
                              "-s", str(work / "load.lua"), url], env=env, capture_output=True, text=True, check=True)
        line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
        return json.loads(line[4:])

    if warmup > 0:
        run(warmup)
    r = run(seconds)
    ok = r["requests"] - r["non2xx"] - r["errors"]
    failures = r["non2xx"] + r["errors"]
    return {"rps": ok / (r["duration_us"] / 1e6), "p50_ms": r["p50_us"] / 1e3, "p99_ms": r["p99_us"] / 1e3, "ok": ok,
            "failures": failures, "failure_kinds": {"non-2xx or socket error (wrk)": failures} if failures else {}}


CLIENT = "wrk" if shutil.which("wrk") else "httpx"


def measure(url: str, texts: list[str], clients: list[int], seconds: float, warmup: float) -> dict[int, Any]:
    """Run the load generator (wrk when installed, else asyncio + httpx) at each concurrency level against `url`."""
    out = {}
    for c in clients:
        out[c] = _load_wrk(url, texts, c, seconds, warmup) if CLIENT == "wrk" else \
            asyncio.run(_load(url, texts, c, seconds, warmup))
        r = out[c]
        print(f"    {c:>3} clients: {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms"
              f"  failures {r['failures']}", flush=True)
        for why, n in r["failure_kinds"].items():
            print(f"        {n} x {why}", flush=True)
    return out


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> float:
    """Poll GET `url` until 200; seconds it took. Raises if the process dies or time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server and its process group (LitServe's workers outlive their parent otherwise), then wait."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)  # each server is started in a session, hence a group, of its own
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    time.sleep(0.5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # any worker left in the group
    except ProcessLookupError:
        pass


def start_peer(kind: str, model_dir: Path, max_batch: int, env: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    """Start peer (a) or (b) in a subprocess; returns it, its inference URL and its readiness URL."""
    port = free_port()
    args = [sys.executable, "-m", "bench.endpoint_peers", kind, str(model_dir), str(port)]
    if kind == "litserve":
        args.append(str(max_batch))
    proc = subprocess.Popen(args, env=env, cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    return proc, (f"{base}/predict" if kind == "litserve" else f"{base}/"), \
        (f"{base}/health" if kind == "litserve" else f"{base}/ready")


def start_vitrine(work: Path, model_dir: Path, max_batch: int, env: dict[str, str], *,
                  monitoring: bool | None = None) -> tuple[subprocess.Popen, str]:
    """Upload the model to a fresh hub, promote main to production, start the standalone endpoint, stop the hub.

    `monitoring`: None keeps the defaults (prediction log at 100%, no shadow); False turns the log off; True
    logs 100% and mirrors every request to a shadow alias serving a second copy of the same version.
    """
    from huggingface_hub import HfApi

    home = work / {None: "home", False: "home-plain", True: "home-monitored"}[monitoring]
    hub, hub_url = start_hub(home, TOKEN)
    try:
        api = HfApi(endpoint=hub_url, token=TOKEN)
        api.create_repo(REPO, exist_ok=True)
        api.upload_folder(repo_id=REPO, folder_path=str(model_dir), commit_message="bench model")
        r = httpx.post(f"{hub_url}/api/models/{REPO}/promote", json={"revision": "main", "alias": "production"},
                       headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"promote answered {r.status_code}: {r.text[:500]}")
        auth = {"authorization": f"Bearer {TOKEN}"}
        if monitoring:
            for method, path, body in (("PUT", "aliases/shadow", {"revision": "main"}),
                                       ("PUT", "endpoints/production/traffic", {"mode": "shadow", "target": "shadow"})):
                r = httpx.request(method, f"{hub_url}/api/models/{REPO}/{path}", json=body, headers=auth, timeout=30)
                if r.status_code != 200:
                    raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:500]}")
        port = free_port()
        ep_env = {**env, "VITRINE_HOME": str(home), "VITRINE_ADMIN_TOKEN": TOKEN,
                  "VITRINE_ENDPOINT_MAX_BATCH": str(max_batch)}
        if monitoring is not None:
            ep_env["VITRINE_PREDICTION_LOG_SAMPLE"] = "1.0" if monitoring else "0"
        proc = subprocess.Popen([VITRINE, "endpoint", "serve", REPO, "--alias", "production", "--port", str(port),
                                 "--home", str(home), "--log-level", "warning"], env=ep_env,
                                start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        took = wait_ready(f"{base}/ready", proc)
        print(f"    vitrine endpoint ready after {took:.1f} s", flush=True)
    finally:
        hub.terminate()  # the hub is not in a group of its own (bench.hubproc starts it)
        try:
            hub.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
    r = httpx.post(f"{base}/", json={"inputs": "The food was great."}, timeout=30)
    if r.status_code != 200:
        stop(proc)
        raise RuntimeError(f"the endpoint answered {r.status_code} after the hub stopped: {r.text[:500]}")
    print(f"    hub stopped; endpoint still answers: {r.text[:120]} (X-Model-Commit {r.headers.get('x-model-commit')})",
          flush=True)
    return proc, f"{base}/"


def run_limit(model_dir: Path, seconds: float, max_batch: int, texts: list[str], work: Path,
              env: dict[str, str]) -> dict[str, Any]:
    """Peer (c), in its own process so this one stays a lean load generator: the bare batched pipeline, inputs/s."""
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bench.endpoint_peers", "limit", str(model_dir), str(seconds),
                          str(max_batch), str(texts_file)], env=env, cwd=Path(__file__).resolve().parent.parent,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratio(a: float, b: float) -> float:
    """a / b, NaN when b is zero."""
    return a / b if b else float("nan")


def main() -> None:
    """Run every peer at every concurrency level, print the tables and ratios, optionally write JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up per level (default: 2)")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--peers", default=",".join(PEERS), help="subset of fastapi,litserve,vitrine")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path")
    parser.add_argument("--monitoring", action="store_true",
                        help="also compare the endpoint at the most clients with 100%% logging and a shadow vs neither")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the --monitoring comparison")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    peers = [p for p in args.peers.split(",") if p]
    warmup = 2.0 if args.warmup is None else args.warmup
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    from scripts.sample_data import build_sentiment, reviews

    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-endpoint-"))
    model_dir = build_sentiment(work / "model", steps=0)
    texts = [str(t) for t in reviews(512, seed=7)["text"]]
    print(f"load generator: {CLIENT}; "
          f"model {model_dir}; {len(texts)} texts; clients {clients}; max batch {args.max_batch}; "
          f"{args.seconds:g} s per level after {warmup:g} s warm-up; torch default threads, "
          f"{os.cpu_count()} CPUs; TOKENIZERS_PARALLELISM=false", flush=True)

    print("(c) limit, bare batched pipeline, before the servers:", flush=True)
    before = run_limit(model_dir, args.seconds, args.max_batch, texts, work, env)
    print(f"    {before['inputs_per_s']:8.1f} inputs/s (batches of {args.max_batch}, "
          f"torch threads {before['torch_threads']})", flush=True)
    results: dict[str, dict[int, dict]] = {}
    for kind in peers:
        print(f"{TITLES[kind]}:", flush=True)
        if kind == "vitrine":
            proc, url = start_vitrine(work, model_dir, args.max_batch, env)
        else:
            proc, url, ready = start_peer(kind, model_dir, args.max_batch, env)
            print(f"    ready after {wait_ready(ready, proc):.1f} s", flush=True)
        try:
            results[kind] = measure(url, texts, clients, args.seconds, warmup)
        finally:
            stop(proc)
    print("(c) limit, bare batched pipeline, after the servers:", flush=True)
    after = run_limit(model_dir, args.seconds, args.max_batch, texts, work, env)
    print(f"    {after['inputs_per_s']:8.1f} inputs/s (batches of {args.max_batch}, "
          f"torch threads {after['torch_threads']})", flush=True)
    limit = max(before, after, key=lambda r: r["inputs_per_s"])  # the better of two, on a shared machine
    limit["runs_inputs_per_s"] = [before["inputs_per_s"], after["inputs_per_s"]]

    print()
    for c in clients:
        print(f"{c} concurrent clients")
        print(f"  {'peer':<24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'failures':>10}")
        for kind in peers:
            r = results[kind][c]
            print(f"  {TITLES[kind]:<24}{r['rps']:>10.1f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['failures']:>10}")
        print(f"  {'(c) limit (inputs/s)':<24}{limit['inputs_per_s']:>10.1f}")
    top = max(clients)
    ratios: dict[str, float] = {}
    if "vitrine" in results:
        v = results["vitrine"][top]
        print(f"\nratios at {top} clients:")
        if "fastapi" in results:
            ratios["vitrine_over_fastapi"] = ratio(v["rps"], results["fastapi"][top]["rps"])
            print(f"  Vitrine / (a) FastAPI   {ratios['vitrine_over_fastapi']:6.2f}x   (aim >= 2x)")
        if "litserve" in results:
            b = results["litserve"][top]
            ratios["vitrine_over_litserve"] = ratio(v["rps"], b["rps"])
            ratios["p99_vitrine_over_litserve"] = ratio(v["p99_ms"], b["p99_ms"])
            print(f"  Vitrine / (b) LitServe  {ratios['vitrine_over_litserve']:6.2f}x   (aim >= 1.0x); "
                  f"p99 {v['p99_ms']:.1f} ms vs {b['p99_ms']:.1f} ms")
        ratios["vitrine_over_limit"] = ratio(v["rps"], limit["inputs_per_s"])
        print(f"  Vitrine / (c) limit     {ratios['vitrine_over_limit']:6.2f}x   (aim >= 0.8x)")
        failed = sum(results["vitrine"][c]["failures"] for c in clients)
        print(f"  Vitrine failed requests: {failed}")
    monitored: dict[str, Any] = {}
    if args.monitoring:
        # Both endpoints stay up (an idle one costs nothing) and are measured in alternation, so drift in the
        # machine's speed during the run falls on both alike; the median of the rounds counts.
        print("Vitrine endpoint, no log and no shadow, against log 100% + shadow, alternating:", flush=True)
        plain_proc, plain_url = start_vitrine(work, model_dir, args.max_batch, env, monitoring=False)
        mon_proc, mon_url = start_vitrine(work, model_dir, args.max_batch, env, monitoring=True)
        rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "monitored": []}
        try:
            for _ in range(args.rounds):
                for label, url in (("plain", plain_url), ("monitored", mon_url)):
                    rounds[label].append(measure(url, texts, [top], args.seconds, warmup)[top])
        finally:
            stop(plain_proc)
            stop(mon_proc)
        for label, runs in rounds.items():
            ordered = sorted(runs, key=lambda r: r["rps"])
            monitored[label] = {**ordered[len(ordered) // 2], "rounds_rps": [r["rps"] for r in runs]}
        ratios["monitored_over_plain"] = ratio(monitored["monitored"]["rps"], monitored["plain"]["rps"])
        print(f"\nat {top} clients, median of {args.rounds} alternating rounds: no log/no shadow "
              f"{monitored['plain']['rps']:.1f} req/s (p99 {monitored['plain']['p99_ms']:.1f} ms; rounds "
              f"{', '.join(f'{x:.0f}' for x in monitored['plain']['rounds_rps'])}); log 100% + shadow "
              f"{monitored['monitored']['rps']:.1f} req/s (p99 {monitored['monitored']['p99_ms']:.1f} ms; rounds "
              f"{', '.join(f'{x:.0f}' for x in monitored['monitored']['rounds_rps'])}): "
              f"{ratios['monitored_over_plain']:.2f}x (aim >= 0.9x)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "monitoring": monitored,
            "settings": {"seconds": args.seconds, "warmup": warmup, "clients": clients, "max_batch": args.max_batch,
                         "cpus": os.cpu_count(), "torch_threads": limit["torch_threads"]},
            "results": {k: {str(c): r for c, r in v.items()} for k, v in results.items()},
            "limit": limit, "ratios_at_max_clients": ratios}, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
