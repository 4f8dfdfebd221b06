"""Push the tiny task models to a hub, with a card naming their task, for the live Spaces tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.apps.models import build_task_model


def card(task: str, title: str = "") -> str:
    """A model card whose front matter declares `task` as the pipeline tag."""
    front = f"pipeline_tag: {task}\n" + (f"title: {title}\n" if title else "")
    return f"---\n{front}---\n\nA tiny random {task} model built by the tests.\n"


def push_task_model(api: Any, repo_id: str, task: str, out_dir: Path, *, seed: int = 0, private: bool = False,
                    message: str | None = None) -> str:
    """Build the tiny `task` model (with `seed`) into `out_dir`, push it to `repo_id`; return the commit id.

    `api` is an `HfApi` pointed at the hub. The repo is created when missing.
    """
    model_dir = build_task_model(task, out_dir, seed=seed)
    (model_dir / "README.md").write_text(card(task), encoding="utf-8")
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(model_dir), repo_id=repo_id,
                             commit_message=message or f"{task} model, seed {seed}")
    return str(info.oid)
