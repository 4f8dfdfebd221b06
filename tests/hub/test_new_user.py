"""For a new user: one home wherever a command runs, hints that name real commands, dataset tags like the Hub's."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import VITRINE, Server, free_port
from tests.helpers import safetensors_bytes

HF = str(Path(VITRINE).parent / "hf")


def user_env(home: Path) -> dict[str, str]:
    """A shell of a user whose HOME is `home`, with no Vitrine or XDG settings of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VITRINE_", "XDG_"))}
    env["HOME"] = str(home)
    return env


def vitrine(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real `vitrine` CLI."""
    return subprocess.run([VITRINE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [
    ["token", "create", "--user", "bob", "--role", "read"], ["fsck", "--quiet"], ["gc", "--quiet"],
])
def test_maintenance_commands_refuse_a_home_without_a_hub(tmp_path: Path, command: list[str]) -> None:
    user, cwd = tmp_path / "user", tmp_path / "elsewhere"
    user.mkdir()
    cwd.mkdir()
    default = user / ".local" / "share" / "vitrine"
    out = vitrine(*command, cwd=cwd, env=user_env(user))
    assert out.returncode == 1, out
    assert f"No Vitrine home at {default}: start it with `vitrine serve --home {default}`" in out.stderr
    assert "--home / set VITRINE_HOME" in out.stderr
    assert not default.exists() and list(cwd.iterdir()) == []

    empty = tmp_path / "empty"
    empty.mkdir()
    out = vitrine(*command, "--home", str(empty), cwd=cwd, env=user_env(user))
    assert out.returncode == 1 and f"No Vitrine home at {empty}:" in out.stderr
    assert list(empty.iterdir()) == []


@pytest.fixture
def default_home_hub(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`vitrine serve` started with no --home and no VITRINE_HOME, from a folder of its own."""
    user, cwd = tmp_path / "user", tmp_path / "served-from"
    user.mkdir()
    cwd.mkdir()
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([VITRINE, "serve", "--port", str(port), "--log-level", "warning"], cwd=cwd,
                            env=user_env(user), stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.time() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).json().get("pid") == proc.pid:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url, user
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_and_maintenance_share_the_per_user_home(default_home_hub: tuple[str, Path], tmp_path: Path) -> None:
    url, user = default_home_hub
    home = user / ".local" / "share" / "vitrine"
    assert (home / "vitrine.db").exists()
    assert not (tmp_path / "served-from" / ".vitrine").exists()
    other = tmp_path / "another-folder"
    other.mkdir()
    out = vitrine("token", "create", "--user", "carol", "--role", "write", cwd=other, env=user_env(user))
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    # The token was created in the running hub's home, so the hub accepts it.
    assert HfApi(endpoint=url, token=token).whoami()["name"] == "carol"
    fsck = vitrine("fsck", "--quiet", cwd=other, env=user_env(user))
    assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck
    assert list(other.iterdir()) == []


def test_bad_revision_hint_names_an_hf_command_that_works(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    admin_api.upload_file(path_or_fileobj=safetensors_bytes(4000), path_in_repo="model.safetensors", repo_id=repo_id)
    admin_api.create_tag(repo_id, tag="v1")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.admin_token}
    out = subprocess.run([VITRINE, "diff", repo_id, "v1", "nope"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "nope" in out.stderr, out
    commands = re.findall(r"`([^`]*\bhf [^`]*)`", out.stderr)
    assert commands, out.stderr
    words = commands[0].split()
    assert words[0] == f"HF_ENDPOINT={hub.url}" and words[1] == "hf" and words[-1] == repo_id
    # The command exists in the installed hf CLI...
    helped = subprocess.run([HF, *words[2:-1], "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stdout + helped.stderr
    # ...and, run as written against this hub, lists the repo's tags.
    listed = subprocess.run([HF, *words[2:], "--format", "quiet"], env={**env, "HF_ENDPOINT": hub.url},
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "v1" in listed.stdout.split(), listed.stdout + listed.stderr


CARD = b"""---
license: mit
language:
- en
task_categories:
- text-classification
task_ids:
- sentiment-classification
size_categories:
- 1K<n<10K
multilinguality: monolingual
annotations_creators:
- expert-generated
source_datasets:
- original
tags:
- reviews
---
# Reviews
"""


def _parquet() -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["good", "bad"], "label": [1, 0]}), buf)
    return buf.getvalue()


def test_dataset_info_and_listing_carry_the_tags_the_hub_derives(admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id, repo_type="dataset")
    admin_api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=repo_id, repo_type="dataset")
    admin_api.upload_file(path_or_fileobj=_parquet(), path_in_repo="data/train-00000-of-00001.parquet",
                          repo_id=repo_id, repo_type="dataset")
    from_card = ["task_categories:text-classification", "task_ids:sentiment-classification",
                 "annotations_creators:expert-generated", "multilinguality:monolingual", "source_datasets:original",
                 "language:en", "license:mit", "size_categories:1K<n<10K"]
    info = admin_api.dataset_info(repo_id)
    assert info.tags == [*from_card, "format:parquet", "library:datasets", "library:pandas", "library:polars",
                         "reviews"]
    listed = [d for d in admin_api.list_datasets(search=repo_name) if d.id == repo_id]
    assert len(listed) == 1 and set(from_card) | {"reviews"} <= set(listed[0].tags or [])
    # Models keep their own tags: no dataset prefixes leak into them.
    admin_api.create_repo(f"{repo_id}-model")
    admin_api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=f"{repo_id}-model")
    assert not any(t.startswith("task_categories:") for t in admin_api.model_info(f"{repo_id}-model").tags)


def test_list_datasets_filters_on_derived_tags(admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id, repo_type="dataset")
    admin_api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=repo_id, repo_type="dataset")
    admin_api.upload_file(path_or_fileobj=_parquet(), path_in_repo="data/train.parquet", repo_id=repo_id,
                          repo_type="dataset")
    found = admin_api.list_datasets(filter=["task_categories:text-classification", "format:parquet"],
                                    search=repo_name)
    assert [d.id for d in found] == [repo_id]
    assert "format:parquet" in (next(iter(admin_api.list_datasets(search=repo_name))).tags or [])
