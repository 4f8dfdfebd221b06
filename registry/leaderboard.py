"""A dataset's leaderboard as the Hub serves it: models ranked by the `.eval_results` entries they declare."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from registry import db
from registry.auth import Principal
from registry.core import Registry
from registry.repos import RepoRecord, list_repos
from registry.versions import read_version


def dataset_leaderboard(reg: Registry, dataset: RepoRecord, viewer: Principal | None, *,
                        base_model_only: bool = True) -> list[dict[str, Any]]:
    """Entries naming `dataset` in the head of every model the viewer may read, ranked per task id (higher first).

    With `base_model_only`, as on the Hub, models whose card declares a `base_model` are left out.
    """
    with reg.engine.connect() as conn:
        orgs = set(conn.execute(sa.select(db.users.c.name).where(db.users.c.is_org == sa.true())).scalars())
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model in list_repos(reg, "model", viewer=viewer):
        version = read_version(reg, model, "main")
        if base_model_only and version.card.data.get("base_model"):
            continue
        for item in version.eval_results:
            data = item.get("data")
            if not isinstance(data, dict) or data.get("dataset", {}).get("id") != dataset.ref.repo_id:
                continue
            if not isinstance(data.get("value"), (int, float)) or isinstance(data.get("value"), bool):
                continue
            namespace = model.ref.namespace
            author = ({"type": "org", "name": namespace, "fullname": namespace} if namespace in orgs
                      else {"type": "user", "name": namespace, "fullname": namespace})
            by_task[str(data["dataset"]["task_id"])].append({
                "modelId": model.ref.repo_id, "value": data["value"], "filename": item["filename"],
                "verified": False, "source": data.get("source"), "author": author, "pullRequest": None,
                "notes": data.get("notes"), "taskId": data["dataset"]["task_id"],
                "datasetRevision": data["dataset"].get("revision"), "modelRevision": version.commit.oid,
            })
    out = []
    for task_id in sorted(by_task):
        ranked = sorted(by_task[task_id], key=lambda e: (-float(e["value"]), e["modelId"]))
        out += [{"rank": i + 1, **entry} for i, entry in enumerate(ranked)]
    return out
