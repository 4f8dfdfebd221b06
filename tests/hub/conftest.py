"""Fixtures shared by the hub's route tests."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi


@pytest.fixture
def repo(admin_api: HfApi, repo_name: str) -> str:
    """A public model repo holding one file, `keep.txt` = b"original"."""
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    admin_api.upload_file(path_or_fileobj=b"original", path_in_repo="keep.txt", repo_id=repo_id)
    return repo_id
