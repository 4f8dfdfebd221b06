"""The Hub's human URLs: a browser is sent to the console's page; API clients get what they got before."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from registry.settings import Settings
from tests.conftest import Server
from tests.helpers import assert_hub_error

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _target(resp: httpx.Response) -> tuple[str, dict[str, str]]:
    assert resp.status_code == 303, resp.text
    url = urlsplit(resp.headers["location"])
    return f"{url.scheme}://{url.netloc}{url.path}", {k: v[0] for k, v in parse_qs(url.query).items()}


@pytest.mark.parametrize(("path", "expected"), [
    ("/acme/sentiment", {"page": "Models", "repo": "acme/sentiment"}),
    ("/acme/sentiment/tree/v2", {"page": "Models", "repo": "acme/sentiment", "revision": "v2"}),
    ("/acme/sentiment/tree/main/sub/dir", {"page": "Models", "repo": "acme/sentiment", "revision": "main",
                                           "path": "sub/dir"}),
    ("/acme/sentiment/blob/v1/config.json", {"page": "Models", "repo": "acme/sentiment", "revision": "v1",
                                             "path": "config.json"}),
    ("/acme/sentiment/commit/" + "a" * 40, {"page": "Models", "repo": "acme/sentiment", "revision": "a" * 40}),
    ("/datasets/acme/reviews", {"page": "Datasets", "repo": "acme/reviews"}),
    ("/datasets/acme/reviews/tree/main", {"page": "Datasets", "repo": "acme/reviews", "revision": "main"}),
    ("/datasets/acme/reviews/blob/main/data/test.parquet", {"page": "Datasets", "repo": "acme/reviews",
                                                            "revision": "main", "path": "data/test.parquet"}),
    ("/datasets/acme/reviews/commit/" + "b" * 40, {"page": "Datasets", "repo": "acme/reviews", "revision": "b" * 40}),
])
def test_a_browser_is_sent_to_the_console_page(hub: Server, path: str, expected: dict[str, str]) -> None:
    where, params = _target(httpx.get(f"{hub.url}{path}", headers=BROWSER))
    assert where == "http://127.0.0.1:8501/" and params == expected


@pytest.mark.parametrize("path", ["/acme/sentiment", "/acme/sentiment/tree/main", "/acme/sentiment/commit/abc",
                                  "/datasets/acme/reviews", "/acme/sentiment/blob/main/config.json"])
@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_api_clients_get_what_they_got_before(hub: Server, path: str, accept: str | None) -> None:
    headers = {"accept": accept} if accept else {}
    assert_hub_error(httpx.get(f"{hub.url}{path}", headers=headers), 404, "NotFound")


def test_api_and_other_methods_are_untouched_for_browsers_too(hub: Server) -> None:
    for path in ("/api/nothing-here", "/api/models/nobody/none"):
        r = httpx.get(f"{hub.url}{path}", headers=BROWSER)
        assert r.status_code >= 400 and "location" not in r.headers
    assert httpx.get(f"{hub.url}/api/models", headers=BROWSER).status_code == 200
    # A form POST from a browser is not a page view: answered as before.
    r = httpx.post(f"{hub.url}/acme/sentiment", headers=BROWSER)
    assert r.status_code in (404, 405) and "location" not in r.headers
    r = httpx.get(f"{hub.url}/spaces/nobody", headers=BROWSER)
    assert "8501" not in r.headers.get("location", "")


def test_console_url_is_a_setting() -> None:
    settings = Settings.from_env({"VITRINE_CONSOLE_URL": "https://console.example"})
    assert settings.console_url == "https://console.example"
    assert Settings.from_env({}).console_url == "http://127.0.0.1:8501"
