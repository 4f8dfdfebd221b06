"""Indexing a 10 GiB safetensors file (sparse) with registry.weights vs safetensors' own safe_open, in one run.

    .venv/bin/python -m bench.bench_index [--gib 10] [--repeat 200]

Both read only the header; the ratio shows we pay no more than the reference reader for the
validation we add (offsets, sizes, layout), and that neither depends on the file size.
"""

from __future__ import annotations

import argparse
import json
import struct
import tempfile
import time
from pathlib import Path

from safetensors import safe_open

from registry.weights import index_weights


def main() -> None:
    """Write a sparse file, time both readers, print per-call times and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        per_tensor = args.gib * 1024**3 // 4 // 100
        header: dict[str, object] = {}
        for i in range(100):
            header[f"layer.{i}.weight"] = {"dtype": "F32", "shape": [per_tensor],
                                           "data_offsets": [i * per_tensor * 4, (i + 1) * per_tensor * 4]}
        raw = json.dumps(header).encode()
        with open(path, "wb") as fh:
            fh.write(struct.pack("<Q", len(raw)))
            fh.write(raw)
            fh.truncate(8 + len(raw) + 100 * per_tensor * 4)

        t = time.perf_counter()
        for _ in range(args.repeat):
            ours = index_weights({"model.safetensors": path})
        t_ours = (time.perf_counter() - t) / args.repeat

        t = time.perf_counter()
        for _ in range(args.repeat):
            with safe_open(str(path), framework="numpy") as f:
                shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
        t_ref = (time.perf_counter() - t) / args.repeat

        assert len(shapes) == len(ours.tensors) == 100
        size = path.stat().st_size / 1024**3
        print(f"file: {size:.1f} GiB, 100 tensors, {ours.total:,} parameters")
        print(f"registry.weights.index_weights  {t_ours * 1000:8.3f} ms per call")
        print(f"safetensors.safe_open + shapes  {t_ref * 1000:8.3f} ms per call")
        print(f"ratio reference/ours = {t_ref / t_ours:.2f}")


if __name__ == "__main__":
    main()
