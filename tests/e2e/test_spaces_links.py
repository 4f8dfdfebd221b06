"""Signed links to a private model's live demo: who may mint one, what one opens (that demo, its Gradio API), what
it never opens (another repo, the repo's files, the API), and how it ends (expiry, tampering, a revoked token, a
member leaving the organisation, a public model turning private)."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from gradio_client import Client
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.conftest import VITRINE, Server, server_env, start_server
from tests.helpers import assert_hub_error, bearer, org_callers

ORG = "linkteam"
MODEL = f"{ORG}/private-demo"
OTHER = f"{ORG}/other-private"
TEXT = "I love this movie, it was wonderful"
COOKIE = "vitrine-demo"
WHO = ["anonymous", "outsider", "read", "write", "admin", "hub-admin"]


@pytest.fixture(scope="module")
def callers(hub: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """A token per kind of caller of the org; a private text-classification model and another private repo."""
    tokens = org_callers(hub, ORG, "link") | {"hub-admin": hub.admin_token}
    api = HfApi(endpoint=hub.url, token=tokens["write"])
    root = tmp_path_factory.mktemp("link-models")
    push_task_model(api, MODEL, "text-classification", root / "model", private=True)
    push_task_model(api, OTHER, "text-classification", root / "other", private=True, seed=2)
    return tokens


def _link(hub: Server, repo_id: str, token: str | None, **params: str) -> httpx.Response:
    return httpx.post(f"{hub.url}/api/vitrine/spaces/{repo_id}/link", params=params, headers=bearer(token),
                      timeout=60)


def _signed(hub: Server, repo_id: str, token: str | None, **params: str) -> str:
    r = _link(hub, repo_id, token, **params)
    assert r.status_code == 200, r.text
    return str(r.json()["url"])


def _sign_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["__sign"][0]


def _cookie(token: str) -> dict[str, str]:
    return {"cookie": f"{COOKIE}={token}"}


@pytest.mark.parametrize("who", WHO)
def test_who_may_mint_a_link(hub: Server, callers: dict[str, str | None], who: str) -> None:
    r = _link(hub, MODEL, callers[who], revision="main")
    if who in ("anonymous", "outsider"):
        assert_hub_error(r, 404, "RepoNotFound")
        assert "__sign" not in r.text
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert body["signed"] is True and body["url"] == f"{hub.url}{body['path']}"
    assert body["path"].startswith(f"/spaces/{MODEL}/?__sign=")
    assert abs(body["expiresAt"] - (time.time() + 3600)) < 60


def test_a_link_names_the_revision_and_refuses_a_missing_one(hub: Server, callers: dict[str, str | None]) -> None:
    url = _signed(hub, MODEL, callers["read"], revision="main", compare="main")
    assert urlsplit(url).path == f"/spaces/{MODEL}/compare/main/main/"
    assert_hub_error(_link(hub, MODEL, callers["read"], revision="no-such-branch"), 404, "RevisionNotFound")
    # A public model needs no signature: an anonymous caller gets its plain URL.
    public = f"{ORG}/public-demo"
    HfApi(endpoint=hub.url, token=callers["write"]).create_repo(public, exist_ok=True)
    HfApi(endpoint=hub.url, token=callers["write"]).upload_file(path_or_fileobj=b"{}", path_in_repo="config.json",
                                                                repo_id=public)
    plain = _link(hub, public, None).json()
    assert plain == {"url": f"{hub.url}/spaces/{public}/", "path": f"/spaces/{public}/", "expiresAt": None,
                     "signed": False}


def test_a_link_opens_the_demo_and_its_gradio_api(hub: Server, callers: dict[str, str | None]) -> None:
    from transformers import pipeline

    from tests.apps.checks import assert_label_matches

    url = _signed(hub, MODEL, callers["read"])
    with httpx.Client(timeout=300) as browser:
        first = browser.get(url)
        assert first.status_code == 303
        assert first.headers["location"] == f"/spaces/{MODEL}/"  # the token leaves the URL at once
        assert first.headers["referrer-policy"] == "no-referrer"
        assert first.headers["cache-control"] == "private, no-store"
        set_cookie = first.headers["set-cookie"]
        assert set_cookie.startswith(f"{COOKIE}={_sign_of(url)};")
        attributes = dict(a.strip().partition("=")[::2] for a in set_cookie.split(";")[1:])
        assert attributes.keys() == {"Path", "Max-Age", "HttpOnly", "SameSite"}, set_cookie
        assert attributes["Path"] == f"/spaces/{MODEL}/" and attributes["SameSite"] == "Lax"
        assert 3500 < int(attributes["Max-Age"]) <= 3600  # the link's own expiry
        # Served over http here; over https the cookie is SameSite=None; Secure; Partitioned.

        page = browser.get(f"{hub.url}{first.headers['location']}")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "private" in page.headers["cache-control"] and page.headers["referrer-policy"] == "no-referrer"
        config = browser.get(f"{hub.url}/spaces/{MODEL}/config")
        assert config.status_code == 200 and config.json()["components"]
        assert "public" not in config.headers.get("cache-control", "")
        # Pinned revisions of the same model are under the cookie's path too.
        assert browser.get(f"{hub.url}/spaces/{MODEL}/revision/main/config").status_code == 200
        # The demo's own code never sees the signed token.
        assert _sign_of(url) not in config.text
        # Without the cookie the same URL is the private repo's 404.
        assert_hub_error(httpx.get(f"{hub.url}/spaces/{MODEL}/config"), 404, "RepoNotFound")

    # The Gradio API (queue, event stream) answers the cookie, as the page's own calls do.
    client = Client(f"{hub.url}/spaces/{MODEL}/", headers=_cookie(_sign_of(url)), verbose=False)
    result = client.predict(TEXT, api_name="/predict")
    sha = HfApi(endpoint=hub.url, token=callers["read"]).model_info(MODEL).sha
    expected = pipeline("text-classification", model=MODEL, revision=sha, token=callers["read"])(TEXT, top_k=None)
    assert_label_matches(result, expected)


def test_a_link_opens_nothing_but_its_own_demo(hub: Server, callers: dict[str, str | None]) -> None:
    url = _signed(hub, MODEL, callers["read"])
    sign = _sign_of(url)
    refused = [
        # Another private repo the same viewer may read: the link was not signed for it.
        httpx.get(f"{hub.url}/spaces/{OTHER}/?__sign={sign}"),
        httpx.get(f"{hub.url}/spaces/{OTHER}/config", headers=_cookie(sign)),
        # The repo's files and API routes take no signed token, by query or cookie.
        httpx.get(f"{hub.url}/{MODEL}/resolve/main/config.json?__sign={sign}"),
        httpx.get(f"{hub.url}/{MODEL}/resolve/main/config.json", headers=_cookie(sign)),
        httpx.get(f"{hub.url}/api/models/{MODEL}", headers=_cookie(sign)),
        httpx.get(f"{hub.url}/api/models/{MODEL}?__sign={sign}"),
        httpx.get(f"{hub.url}/api/vitrine/spaces/{MODEL}/bundle", headers=_cookie(sign)),
        httpx.get(f"{hub.url}/api/models/{MODEL}/tree/main", headers=_cookie(sign)),
        # The managed Space repo's files neither, though they live under the cookie's path.
        httpx.get(f"{hub.url}/spaces/{MODEL}/resolve/main/app.py", headers=_cookie(sign)),
        # A link does not mint links.
        httpx.post(f"{hub.url}/api/vitrine/spaces/{MODEL}/link", headers=_cookie(sign)),
    ]
    for r in refused:
        assert_hub_error(r, 404, "RepoNotFound")


def test_a_tampered_link_is_refused(hub: Server, callers: dict[str, str | None]) -> None:
    sign = _sign_of(_signed(hub, MODEL, callers["read"]))
    repo_pk, token_id, expires, sig = sign.split(".")
    flipped = "0" if sig[-1] != "0" else "1"
    for bad in (f"{repo_pk}.{token_id}.{expires}.{sig[:-1]}{flipped}",     # signature
                f"{repo_pk}.{token_id}.{int(expires) + 86400}.{sig}",       # a later expiry
                f"{int(repo_pk) + 1}.{token_id}.{expires}.{sig}",           # another repo
                f"{repo_pk}.{int(token_id) + 1}.{expires}.{sig}",           # another viewer
                "garbage", "", f"{sign}.x", f"{repo_pk}.{token_id}.{expires}.{sig.upper()}"):
        r = httpx.get(f"{hub.url}/spaces/{MODEL}/", params={"__sign": bad})
        assert_hub_error(r, 404, "RepoNotFound")
        assert "set-cookie" not in r.headers
        assert_hub_error(httpx.get(f"{hub.url}/spaces/{MODEL}/config", headers=_cookie(bad)), 404, "RepoNotFound")


def test_a_link_expires_and_over_https_sets_a_cross_site_cookie(tmp_path_factory: pytest.TempPathFactory) -> None:
    short = start_server(tmp_path_factory.mktemp("short-links"), VITRINE_DEMO_LINK_TTL="2",
                         VITRINE_PUBLIC_URL="https://hub.example")
    try:
        # Through httpx: the stock client refuses repo URLs on a host it does not know.
        created = httpx.post(f"{short.url}/api/repos/create", headers=bearer(short.admin_token),
                             json={"name": "model", "organization": "expiry", "private": True})
        assert created.status_code == 200, created.text
        link = _link(short, "expiry/model", short.admin_token).json()
        assert link["url"] == f"https://hub.example{link['path']}"
        first = httpx.get(f"{short.url}{link['path']}")
        assert first.status_code == 303
        # Behind https a console on another site can embed the demo: the cookie goes to cross-site iframes.
        assert first.headers["set-cookie"].endswith("; HttpOnly; SameSite=None; Secure; Partitioned")
        assert "Max-Age=2;" in first.headers["set-cookie"] or "Max-Age=1;" in first.headers["set-cookie"]
        time.sleep(3)
        assert_hub_error(httpx.get(f"{short.url}{link['path']}"), 404, "RepoNotFound")
        assert_hub_error(httpx.get(f"{short.url}/spaces/expiry/model/config",
                                   headers=_cookie(_sign_of(link["url"]))), 404, "RepoNotFound")
    finally:
        short.stop()


def test_revoking_the_token_or_leaving_the_org_ends_the_link(hub: Server, callers: dict[str, str | None]) -> None:
    config = f"{hub.url}/spaces/{MODEL}/config"
    # A revoked token: its links stop at the next request, though the same user's other token still reads.
    first = hub.token("link-revoker", "read", org=ORG)
    second = hub.token("link-revoker", "read", org=ORG)
    sign = _sign_of(_signed(hub, MODEL, first))
    assert httpx.get(config, headers=_cookie(sign), timeout=300).status_code == 200
    mine = httpx.get(f"{hub.url}/api/vitrine/tokens", headers=bearer(second)).json()
    first_id = int(sign.split(".")[1])
    assert first_id in {t["id"] for t in mine}
    assert httpx.delete(f"{hub.url}/api/vitrine/tokens/{first_id}", headers=bearer(second)).status_code == 200
    assert_hub_error(httpx.get(config, headers=_cookie(sign)), 404, "RepoNotFound")
    assert_hub_error(httpx.get(f"{hub.url}/spaces/{MODEL}/?__sign={sign}"), 404, "RepoNotFound")

    # A member who leaves the organisation: the link was signed while they could read, and no longer opens.
    leaver = hub.token("link-leaver", "read", org=ORG)
    sign = _sign_of(_signed(hub, MODEL, leaver))
    assert httpx.get(config, headers=_cookie(sign), timeout=300).status_code == 200
    removed = httpx.delete(f"{hub.url}/api/vitrine/admin/orgs/{ORG}/members/link-leaver",
                           headers=bearer(hub.admin_token))
    assert removed.status_code == 200, removed.text
    assert_hub_error(httpx.get(config, headers=_cookie(sign)), 404, "RepoNotFound")
    assert_hub_error(httpx.get(f"{hub.url}/spaces/{MODEL}/", headers=_cookie(sign)), 404, "RepoNotFound")


def test_a_link_to_a_public_model_ends_when_it_turns_private(hub: Server, callers: dict[str, str | None],
                                                             tmp_path: Path) -> None:
    repo_id = f"{ORG}/turns-private"
    owner = HfApi(endpoint=hub.url, token=callers["write"])
    push_task_model(owner, repo_id, "text-classification", tmp_path / "model", seed=4)
    # An outsider may read the public model, so they may mint a link to it.
    sign = _sign_of(_signed(hub, repo_id, callers["outsider"]))
    config = f"{hub.url}/spaces/{repo_id}/config"
    assert httpx.get(config, headers=_cookie(sign), timeout=300).status_code == 200
    owner.update_repo_settings(repo_id, private=True)
    assert_hub_error(httpx.get(config, headers=_cookie(sign)), 404, "RepoNotFound")
    assert_hub_error(httpx.get(f"{hub.url}/spaces/{repo_id}/?__sign={sign}"), 404, "RepoNotFound")
    # A member's link opens it still.
    assert httpx.get(config, headers=_cookie(_sign_of(_signed(hub, repo_id, callers["read"])))).status_code == 200


def test_vitrine_space_link_prints_a_link_that_opens_the_demo(hub: Server, callers: dict[str, str | None]) -> None:
    def vitrine(*args: str, token: str | None) -> subprocess.CompletedProcess[str]:
        env = server_env(hub.home) | {"HF_ENDPOINT": hub.url}
        env.pop("HF_TOKEN", None)
        if token:
            env["HF_TOKEN"] = token
        return subprocess.run([VITRINE, "space", "link", *args], capture_output=True, text=True, env=env, timeout=120)

    done = vitrine(MODEL, "--revision", "main", token=callers["read"])
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{hub.url}/spaces/{MODEL}/?__sign=")
    assert "signed for this token's user until" in done.stdout
    with httpx.Client(timeout=300, follow_redirects=True) as browser:
        config = browser.get(url.replace("/?__sign=", "/config?__sign="))
        assert config.status_code == 200 and config.json()["components"]

    outsider = vitrine(MODEL, token=callers["outsider"])
    assert outsider.returncode == 1 and "not found" in outsider.stderr.lower() and "--token" in outsider.stderr
    missing = vitrine(MODEL, "--revision", "nope", token=callers["read"])
    assert missing.returncode == 1 and "hf repos tag list" in missing.stderr
    anonymous = vitrine(MODEL, token=None)
    assert anonymous.returncode == 1 and "HF_TOKEN" in anonymous.stderr


def test_signed_tokens_are_kept_out_of_the_access_log(caplog: pytest.LogCaptureFixture) -> None:
    from hub.routes.spaces import _redact_access_log

    _redact_access_log()
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                    "/spaces/a/b/?x=1&__sign=1.2.3.abcdef&y=2", "1.1", 303)
    assert caplog.records[-1].getMessage() == \
        '127.0.0.1:5000 - "GET /spaces/a/b/?x=1&__sign=[redacted]&y=2 HTTP/1.1" 303'
