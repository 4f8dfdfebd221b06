"""A person's view of a live demo: headless Chromium opens the page on the hub, types, clicks Submit and
sees the prediction. The screenshot is kept under test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.conftest import ROOT, Server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
TEXT = "The food was wonderful and the service was great"


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Chromium at /usr/bin/chromium")
def test_browser_types_clicks_and_sees_the_prediction(hub: Server, admin_api: HfApi, tmp_path: Path) -> None:
    from playwright.sync_api import Route, sync_playwright
    from transformers import pipeline

    repo_id = "spaces-browser/sentiment"
    sha = push_task_model(admin_api, repo_id, "text-classification", tmp_path / "model")
    expected = pipeline("text-classification", model=repo_id, revision=sha)(TEXT, top_k=None)
    top = max(expected, key=lambda item: item["score"])["label"]

    def local_only(route: Route) -> None:
        # Nothing outside loopback is reachable here: fail fast instead of waiting on web fonts.
        if route.request.url.startswith(hub.url):
            route.continue_()
        else:
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "spaces-demo.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", local_only)
            page.goto(f"{hub.url}/spaces/{repo_id}", timeout=120_000)
            page.get_by_label("Text").fill(TEXT)
            page.get_by_role("button", name="Submit").click()
            shown = page.get_by_test_id("label-output-value")
            shown.wait_for(timeout=60_000)
            page.wait_for_timeout(300)  # let the bar chart finish drawing for the screenshot
            page.screenshot(path=str(shot), full_page=True)
            assert shown.inner_text().strip() == top
        finally:
            browser.close()
    assert shot.stat().st_size > 0
