"""Console first-render time on a big repo: the model page and the compare page of a repo with 1,000 commits and
10,000 files, hub and console on loopback (Streamlit AppTest run time, the script's full run; the component scan
a running console does once at start is done once, by the first run).

    .venv/bin/python -m bench.bench_console --commits 1000 --files 10000
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.hubproc import start_hub

TOKEN = "hf_bench_admin_token_0123456789"
REPO = "bench/big"
APP = str(Path(__file__).resolve().parents[1] / "apps" / "console" / "app.py")


def _weights(seed: int) -> bytes:
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    return save({f"encoder.layer.{i}.weight": rng.standard_normal((64, 64)).astype(np.float32) for i in range(12)})


def build_repo(endpoint: str, *, commits: int, files: int) -> None:
    """`files` small files and weights in the first commit (tag v1), then one-file commits up to `commits`."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, token=TOKEN)
    api.create_repo(REPO)
    ops = [CommitOperationAdd(f"data/{i // 100:03d}/file-{i:05d}.txt", f"row {i}\n".encode()) for i in range(files)]
    ops += [CommitOperationAdd("model.safetensors", io.BytesIO(_weights(0))),
            CommitOperationAdd("config.json", b'{"model_type": "bert", "hidden_size": 64}'),
            CommitOperationAdd("README.md", b"---\npipeline_tag: feature-extraction\n---\n# Big\n")]
    first = api.create_commit(REPO, operations=ops, commit_message="many files")
    api.create_tag(REPO, tag="v1", revision=first.oid)
    for i in range(commits - 3):
        api.create_commit(REPO, operations=[CommitOperationAdd("notes.txt", f"note {i}\n".encode())],
                          commit_message=f"note {i}")
    api.create_commit(REPO, operations=[CommitOperationAdd("model.safetensors", io.BytesIO(_weights(1))),
                                        CommitOperationAdd("config.json", b'{"model_type": "bert", "hidden_size": 65}')],
                      commit_message="retrain")


_COMPONENTS: list[object] = []
"""The component manager of the first AppTest run, shared by the later ones (see `first_render`)."""


def first_render(endpoint: str, **params: str) -> float:
    """Seconds of one AppTest run of the console with the given URL query."""
    from streamlit.testing.v1 import AppTest

    os.environ.update(VITRINE_ENDPOINT=endpoint, VITRINE_TOKEN=TOKEN)
    at = AppTest.from_file(APP, default_timeout=600)
    # A running console scans the installed packages for Streamlit components once, at start; a fresh AppTest
    # does it again on its first run (0.66 s of the 1.2 s this bench measured here). Hand every run the
    # manager the first one built, so what is timed is the page's run, as a browser on a running console sees it.
    if _COMPONENTS:
        at._bidi_component_manager = _COMPONENTS[0]
    for k, v in params.items():
        at.query_params[k] = v
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if not _COMPONENTS and at._bidi_component_manager is not None:
        _COMPONENTS.append(at._bidi_component_manager)
    if at.exception or at.error:
        raise RuntimeError(f"console failed: {at.exception or [e.value for e in at.error]}")
    return elapsed


def main() -> None:
    """Build the repo, then time each page's first render (best of `--runs`)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        server, endpoint = start_hub(Path(home), TOKEN)
        try:
            t0 = time.perf_counter()
            build_repo(endpoint, commits=args.commits, files=args.files)
            print(f"built {REPO}: {args.commits} commits, {args.files} files in {time.perf_counter() - t0:.1f} s")
            for name, params in (("model page", {"page": "Models", "repo": REPO}),
                                 ("compare page", {"page": "Compare", "repo": REPO, "old": "v1", "new": "main"})):
                times = [first_render(endpoint, **params) for _ in range(args.runs)]
                print(f"{name:13s} first render  best {min(times):6.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)})")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
