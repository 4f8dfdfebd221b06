"""A read member's view of a private model's live demo in the console, in headless Chromium: the browser carries
no token, so the console embeds the demo through a signed link, and the Gradio app in the iframe answers a
prediction. The screenshot is kept under test-artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.conftest import ROOT, Server, free_port
from tests.e2e.consoles import running_console

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
ORG = "demoview"
REPO = f"{ORG}/private-sentiment"
TEXT = "The food was wonderful and the service was great"


@pytest.fixture(scope="module")
def console(hub: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a console started on the session's hub."""
    with running_console(hub.url, free_port(), tmp_path_factory.mktemp("demo-console")) as url:
        yield url


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Chromium at /usr/bin/chromium")
def test_a_reader_sees_the_private_demo_predict_inside_the_console(hub: Server, admin_api: HfApi, console: str,
                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import Route, expect, sync_playwright
    from transformers import pipeline

    sha = push_task_model(admin_api, REPO, "text-classification", tmp_path / "model", private=True)
    reader = hub.token(f"{ORG}-reader", "read", org=ORG, org_role="read")
    expected = pipeline("text-classification", model=REPO, revision=sha, token=reader)(TEXT, top_k=None)
    top = max(expected, key=lambda item: item["score"])["label"]

    def local_only(route: Route) -> None:
        # Nothing outside loopback is reachable here: fail fast instead of waiting on web fonts.
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1")):
            route.continue_()
        else:
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "console-private-demo.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.route("**/*", local_only)
            page.goto(f"{console}/?page=Models", timeout=60_000)
            expect(page.get_by_text("Anonymous: you see public repos only.")).to_be_visible(timeout=60_000)
            token = page.get_by_role("textbox", name="Token")
            token.fill(reader)
            token.press("Enter")
            expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30_000)
            search = page.get_by_role("textbox", name="Search", exact=True)
            search.fill("private-sentiment")
            search.press("Enter")
            expect(page.get_by_role("heading", name=REPO)).to_be_visible(timeout=30_000)

            page.get_by_role("tab", name="Demo").click()
            expect(page.get_by_text("A private model: the demo opens through a link signed for you")).to_be_visible(
                timeout=30_000)
            href = page.get_by_role("link", name="Open the live demo").get_attribute("href") or ""
            assert href.startswith(f"{hub.url}/spaces/{REPO}/revision/{sha}/?__sign="), href
            page.get_by_text("Embed the demo here").click()

            iframe = page.locator("iframe[src*='/spaces/']")
            expect(iframe).to_be_attached(timeout=30_000)
            assert "__sign=" in (iframe.get_attribute("src") or "")
            demo = page.frame_locator("iframe[src*='/spaces/']")
            demo.get_by_label("Text").fill(TEXT, timeout=180_000)  # the first visit builds the demo
            demo.get_by_role("button", name="Submit").click()
            shown = demo.get_by_test_id("label-output-value")
            expect(shown).to_have_text(top, timeout=60_000)
            # The token left the demo's URL at its first request: the frame shows the clean one.
            frame = next(f for f in page.frames if f"/spaces/{REPO}/" in f.url)
            assert "__sign" not in frame.url and frame.url.endswith(f"/spaces/{REPO}/revision/{sha}/")
            page.wait_for_timeout(300)  # let the bar chart finish drawing for the screenshot
            iframe.scroll_into_view_if_needed()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 0
