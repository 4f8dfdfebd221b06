"""A person's tour of the console in headless Chromium: sign in, find a model, compare two versions, and follow
a hub URL the `hf` CLI prints to its console page. Screenshots are kept under test-artifacts/."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.conftest import ROOT, Server, free_port, start_server
from tests.e2e.consoles import running_console, wait_healthy

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
REPO, DATASET = "tour/classifier", "tour/reviews"


def _evaluate(hub: Server, revision: str) -> None:
    auth = {"authorization": f"Bearer {hub.admin_token}"}
    body = {"model": REPO, "revision": revision, "dataset": DATASET, "split": "test",
            "mapping": {"text": "text", "label": "label"}, "slices": ["lang"]}
    job = httpx.post(f"{hub.url}/api/vitrine/evals", json=body, headers=auth, timeout=60).json()
    deadline = time.time() + 300
    while job["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.3)
        job = httpx.get(f"{hub.url}/api/vitrine/evals/{job['id']}", headers=auth).json()
    assert job["status"] == "succeeded", job


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A hub whose human URLs point at a console started for it, with a model in two evaluated versions."""
    console_port = free_port()
    console_url = f"http://127.0.0.1:{console_port}"
    hub = start_server(tmp_path_factory.mktemp("tour-hub"), VITRINE_CONSOLE_URL=console_url)
    api = HfApi(endpoint=hub.url, token=hub.admin_token)
    tmp = tmp_path_factory.mktemp("tour-models")
    v1 = push_task_model(api, REPO, "text-classification", tmp / "v1", seed=0)
    api.create_tag(REPO, tag="v1", revision=v1)
    push_task_model(api, REPO, "text-classification", tmp / "v2", seed=5)
    api.create_repo(DATASET, repo_type="dataset")
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["good food", "awful service", "the movie was fine", "i hate it"] * 5,
                             "label": ["positive", "negative", "neutral", "negative"] * 5,
                             "lang": ["en", "de"] * 10}), buf)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                    repo_id=DATASET, repo_type="dataset")
    _evaluate(hub, "v1")
    _evaluate(hub, "main")
    try:
        with running_console(hub.url, console_port, tmp):
            yield hub, console_url
    finally:
        hub.stop()


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Chromium at /usr/bin/chromium")
def test_sign_in_search_compare_and_follow_a_hub_url(tour: tuple[Server, str]) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    hub, console_url = tour

    def local_only(route: Route) -> None:
        # Nothing outside loopback is reachable here: fail fast instead of waiting on web fonts.
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1")):
            route.continue_()
        else:
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", local_only)
            page.goto(console_url, timeout=60_000)
            expect(page.get_by_text("Anonymous: you see public repos only.")).to_be_visible(timeout=60_000)
            token = page.get_by_role("textbox", name="Token")
            token.fill(hub.admin_token)
            token.press("Enter")
            expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "console-signed-in.png"), full_page=True)

            search = page.get_by_role("textbox", name="Search", exact=True)
            search.fill("classifier")
            search.press("Enter")
            expect(page.get_by_role("heading", name=REPO)).to_be_visible(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "console-model.png"), full_page=True)

            page.get_by_test_id("stSidebar").get_by_text("Compare", exact=True).click()
            expect(page.get_by_text("Weight diff per layer")).to_be_visible(timeout=30_000)
            expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible(timeout=30_000)
            metrics = page.get_by_test_id("stTable").first
            expect(metrics).to_contain_text("accuracy", timeout=30_000)
            expect(metrics).to_contain_text("v1")
            page.wait_for_timeout(500)  # let the charts finish drawing for the screenshot
            page.screenshot(path=str(ARTIFACTS / "console-compare.png"), full_page=True)

            # The URL the CLI prints for a version, opened in a browser, lands on that version's page.
            page.goto(f"{hub.url}/{REPO}/tree/v1", timeout=60_000)
            assert page.url.startswith(console_url)
            expect(page.get_by_role("heading", name=REPO)).to_be_visible(timeout=60_000)
            expect(page.get_by_test_id("stMetricValue").filter(has_text="v1")).to_be_visible(timeout=30_000)
            assert "revision=v1" in page.url
            page.screenshot(path=str(ARTIFACTS / "console-hub-url.png"), full_page=True)
        finally:
            browser.close()
    for name in ("signed-in", "model", "compare", "hub-url"):
        assert (ARTIFACTS / f"console-{name}.png").stat().st_size > 0


def test_vitrine_console_starts_the_console_on_a_hub(hub: Server) -> None:
    from tests.conftest import VITRINE

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}
    proc = subprocess.Popen([VITRINE, "console", "--hub", hub.url, "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    assert f"Console on http://127.0.0.1:{port} (hub: {hub.url})" in out
