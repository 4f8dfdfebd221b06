"""`expand` on repo info and listings, as the Hub answers it: only the properties asked, with `_id` and `id`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import BadRequestError

from tests.conftest import Server
from tests.helpers import assert_hub_error, bearer, safetensors_bytes

ORG = "expandteam"
MODEL = f"{ORG}/public-model"
PRIVATE = f"{ORG}/private-model"
DATASET = f"{ORG}/table"
SPACE = f"{ORG}/app"
CARD = b"---\npipeline_tag: text-classification\nlibrary_name: transformers\nlicense: mit\n---\n# A model\n"
EVAL = b"- dataset: {id: expandteam/table, task_id: test/accuracy}\n  value: 0.9\n"
MODEL_FILES = [".gitattributes", "README.md", "config.json", "model.safetensors", ".eval_results/table.yaml",
               *(f"data/{i:02d}.txt" for i in range(5))]


@pytest.fixture(scope="module")
def site(hub: Server) -> dict[str, Any]:
    """A token per kind of caller, a public and a private model, a dataset and a Space of the org."""
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "outsider": hub.token("expand-outsider", "write"),
        "read": hub.token("expand-reader", "read", org=ORG),
        "write": hub.token("expand-writer", "write", org=ORG),
        "admin": hub.admin_token,
    }
    api = HfApi(endpoint=hub.url, token=tokens["write"])
    contents = {"README.md": CARD, "config.json": b'{"model_type": "bert", "architectures": ["BertModel"]}',
                "model.safetensors": safetensors_bytes(4096), ".eval_results/table.yaml": EVAL,
                **{f"data/{i:02d}.txt": b"x" for i in range(5)}}
    for repo_id, private in ((MODEL, False), (PRIVATE, True)):
        api.create_repo(repo_id, private=private)
        api.create_commit(repo_id, operations=[CommitOperationAdd(p, c) for p, c in contents.items()],
                          commit_message="files")
    api.create_repo(DATASET, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n# A table\n", path_in_repo="README.md",
                    repo_id=DATASET, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="train.csv", repo_id=DATASET, repo_type="dataset")
    api.create_repo(SPACE, repo_type="space", space_sdk="gradio")
    return {"tokens": tokens, "api": api}


def _raw(hub: Server, path: str, token: str | None, **params: Any) -> httpx.Response:
    return httpx.get(f"{hub.url}{path}", params=params, headers=bearer(token), timeout=60)


def test_model_info_expand_returns_only_what_is_asked(hub: Server, site: dict[str, Any]) -> None:
    """`model_info(expand=["downloads", "likes"])` answers `_id`, `id` and those two, nothing else."""
    token = site["tokens"]["write"]
    body = _raw(hub, f"/api/models/{MODEL}", token, expand=["downloads", "likes"]).json()
    assert set(body) == {"_id", "id", "downloads", "likes"}
    info = site["api"].model_info(MODEL, expand=["downloads", "likes"])
    assert info.id == MODEL and info.downloads == body["downloads"] and info.likes == body["likes"]
    assert info.sha is None and info.siblings is None and info.card_data is None
    # `expand[]`, as some clients spell it, is the same.
    assert set(_raw(hub, f"/api/models/{MODEL}", token, **{"expand[]": ["sha"]}).json()) == {"_id", "id", "sha"}


def test_console_header_without_siblings(hub: Server, site: dict[str, Any]) -> None:
    """What the console's model page asks for: every header fact and the file count, no file names."""
    asked = ["sha", "private", "pipeline_tag", "library_name", "safetensors", "cardData", "vitrine"]
    full = _raw(hub, f"/api/models/{MODEL}", site["tokens"]["write"]).json()
    body = _raw(hub, f"/api/models/{MODEL}/revision/{full['sha']}", site["tokens"]["write"], expand=asked).json()
    assert set(body) == {"_id", "id", *asked}
    assert {k: body[k] for k in asked} == {k: full[k] for k in asked}
    assert body["vitrine"]["fileCount"] == len(full["siblings"]) == len(MODEL_FILES)
    assert body["pipeline_tag"] == "text-classification" and body["safetensors"]["total"] == 1024
    info = site["api"].model_info(MODEL, revision=full["sha"], expand=asked)  # type: ignore[arg-type]
    assert info.sha == full["sha"] and info.pipeline_tag == "text-classification"
    assert info.library_name == "transformers" and info.card_data.license == "mit"
    assert info.safetensors.total == 1024 and info.siblings is None
    assert info.vitrine["fileCount"] == len(MODEL_FILES)


@pytest.mark.parametrize("prop", ["author", "cardData", "config", "createdAt", "disabled", "downloads", "evalResults",
                                  "gated", "lastModified", "library_name", "likes", "pipeline_tag", "private",
                                  "safetensors", "sha", "siblings", "tags", "usedStorage", "vitrine"])
def test_each_model_property_is_its_value_without_expand(hub: Server, site: dict[str, Any], prop: str) -> None:
    """Every property Vitrine has comes back alone under `expand`, the same as in the full answer."""
    token = site["tokens"]["write"]
    full = _raw(hub, f"/api/models/{MODEL}", token).json()
    body = _raw(hub, f"/api/models/{MODEL}", token, expand=prop).json()
    assert body == {"_id": full["_id"], "id": MODEL, prop: full[prop]}


def test_eval_results_and_siblings_parse(site: dict[str, Any]) -> None:
    """`expand=["evalResults"]` still gives the stock client its entries; `siblings` alone still lists every file."""
    info = site["api"].model_info(MODEL, expand=["evalResults"])
    assert [(e.dataset_id, e.task_id, e.value) for e in info.eval_results or []] == [(DATASET, "test/accuracy", 0.9)]
    info = site["api"].model_info(MODEL, expand=["siblings"])
    assert sorted(s.rfilename for s in info.siblings or []) == sorted(MODEL_FILES) and info.sha is None


def test_without_expand_the_answer_is_whole(hub: Server, site: dict[str, Any]) -> None:
    """No `expand`: every field, `siblings` included, as before."""
    body = _raw(hub, f"/api/models/{MODEL}", site["tokens"]["write"]).json()
    assert set(body) == {"_id", "id", "author", "private", "gated", "disabled", "downloads", "likes", "tags",
                         "createdAt", "lastModified", "modelId", "pipeline_tag", "library_name", "sha", "cardData",
                         "siblings", "usedStorage", "safetensors", "config", "vitrine", "evalResults"}
    assert sorted(s["rfilename"] for s in body["siblings"]) == sorted(MODEL_FILES)
    info = site["api"].model_info(MODEL, files_metadata=True)
    assert info.sha == body["sha"] and len(info.siblings or []) == len(MODEL_FILES)


def test_dataset_and_space_info_expand(hub: Server, site: dict[str, Any]) -> None:
    """`dataset_info` and `space_info` with `expand` answer those properties alone, parsed by the client."""
    api = site["api"]
    body = _raw(hub, f"/api/datasets/{DATASET}", None, expand=["sha", "description", "cardData"]).json()
    assert set(body) == {"_id", "id", "sha", "description", "cardData"} and body["description"] == "# A table"
    info = api.dataset_info(DATASET, expand=["sha", "siblings", "description"])
    assert info.sha and {"README.md", "train.csv"} <= {s.rfilename for s in info.siblings or []}
    assert info.description == "# A table" and info.likes is None and info.card_data is None
    body = _raw(hub, f"/api/spaces/{SPACE}", None, expand=["sdk", "runtime", "subdomain"]).json()
    assert set(body) == {"_id", "id", "sdk", "runtime", "subdomain"}
    space = api.space_info(SPACE, expand=["sdk", "subdomain", "runtime"])
    assert space.sdk == "gradio" and space.subdomain == SPACE.replace("/", "-") and space.runtime is not None
    assert space.sha is None and space.siblings is None


def test_listings_expand(hub: Server, site: dict[str, Any]) -> None:
    """`list_models(expand=...)` and friends: each item holds only the properties asked, any of repo info's."""
    api = site["api"]
    items = _raw(hub, "/api/models", site["tokens"]["write"], author=ORG, expand=["sha", "downloads"]).json()
    assert {i["id"] for i in items} == {MODEL, PRIVATE}
    assert all(set(i) == {"_id", "id", "sha", "downloads"} for i in items)
    models = {m.id: m for m in api.list_models(author=ORG, expand=["sha", "siblings", "vitrine"])}
    assert set(models) == {MODEL, PRIVATE}
    head = models[MODEL]
    assert head.sha == api.model_info(MODEL).sha and len(head.siblings or []) == len(MODEL_FILES)
    assert head.vitrine["fileCount"] == len(MODEL_FILES) and head.downloads is None and head.pipeline_tag is None
    datasets = list(api.list_datasets(author=ORG, expand=["sha", "description"]))
    assert [(d.id, d.description, d.likes) for d in datasets] == [(DATASET, "# A table", None)]
    spaces = list(api.list_spaces(author=ORG, expand=["sdk"]))
    assert [(s.id, s.sdk, s.sha) for s in spaces] == [(SPACE, "gradio", None)]
    # Unexpanded, a listing item is the summary it always was.
    plain = _raw(hub, "/api/models", site["tokens"]["write"], author=ORG).json()
    assert all("siblings" not in i and "modelId" in i and "lastModified" in i for i in plain)


def test_listing_next_page_keeps_every_expand(hub: Server, site: dict[str, Any]) -> None:
    """The `Link` of the next page repeats every `expand` value, so page two has the same shape."""
    first = _raw(hub, "/api/models", site["tokens"]["write"], author=ORG, expand=["sha", "likes"], limit=1)
    following = first.links["next"]["url"]
    assert httpx.URL(following).params.get_list("expand") == ["sha", "likes"]
    second = httpx.get(following, headers=bearer(site["tokens"]["write"])).json()
    assert [set(i) for i in [*first.json(), *second]] == [{"_id", "id", "sha", "likes"}] * 2
    assert {i["id"] for i in [*first.json(), *second]} == {MODEL, PRIVATE}


@pytest.mark.parametrize("path", [f"/api/models/{MODEL}", f"/api/models/{MODEL}/revision/main", "/api/models",
                                  f"/api/datasets/{DATASET}", f"/api/spaces/{SPACE}"])
@pytest.mark.parametrize("bad", ["bogus", "modelId", ""])
def test_unknown_expand_is_a_clear_400(hub: Server, path: str, bad: str) -> None:
    """A property the Hub does not know for that repo type is refused, naming it and the known ones."""
    assert_hub_error(_raw(hub, path, None, expand=["sha", bad]), 400, "BadRequest", contains=f"Invalid expand {bad!r}")


def test_unknown_expand_through_the_client(site: dict[str, Any]) -> None:
    """huggingface_hub raises its BadRequestError, for info and listing alike."""
    with pytest.raises(BadRequestError, match="Invalid expand 'bogus'"):
        site["api"].model_info(MODEL, expand=["bogus"])  # type: ignore[list-item]
    with pytest.raises(BadRequestError, match="Invalid expand 'downloads'"):
        site["api"].space_info(SPACE, expand=["downloads"])  # type: ignore[list-item]


@pytest.mark.parametrize("who", ["anonymous", "outsider", "read", "write", "admin"])
@pytest.mark.parametrize("route", [f"/api/models/{PRIVATE}", f"/api/models/{PRIVATE}/revision/main"])
def test_private_repo_with_expand_follows_permissions(hub: Server, site: dict[str, Any], route: str,
                                                      who: str) -> None:
    """`expand` shows a private repo to its readers only; everyone else gets the same 404 as without it."""
    token = site["tokens"][who]
    r = _raw(hub, route, token, expand=["sha", "siblings", "vitrine"])
    if who in ("anonymous", "outsider"):
        assert_hub_error(r, 404, "RepoNotFound")
        assert "model.safetensors" not in r.text and "fileCount" not in r.text
    else:
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"_id", "id", "sha", "siblings", "vitrine"}
    listed = {i["id"] for i in _raw(hub, "/api/models", token, author=ORG, expand=["sha"]).json()}
    assert (PRIVATE in listed) is (who not in ("anonymous", "outsider")) and MODEL in listed
