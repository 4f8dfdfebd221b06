"""The Space bundle: README metadata, requirements, examples, card text safety, the info page."""

from __future__ import annotations

import ast
import functools
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from huggingface_hub import RepoCard, SpaceCard, SpaceCardData

from apps.demo import TASKS, DemoSpec, example_rows, load_demo, python_literal, render_bundle, spec_from_card
from tests.apps.checks import Media

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _spec(model: Path, task: str = "text-classification", **kwargs: object) -> DemoSpec:
    return DemoSpec(repo_id=str(model), task=task, **kwargs)  # type: ignore[arg-type]


def test_bundle_has_the_three_space_files(task_models: dict[str, Path]) -> None:
    bundle = render_bundle(_spec(task_models["text-classification"]))
    assert set(bundle) == {"app.py", "README.md", "requirements.txt"}
    compile(bundle["app.py"], "app.py", "exec")
    assert 'api_name="predict"' in bundle["app.py"]
    assert 'if __name__ == "__main__":\n    demo.launch()' in bundle["app.py"]


def test_system_packages_go_to_packages_txt(task_models: dict[str, Path]) -> None:
    bundle = render_bundle(_spec(task_models["document-question-answering"], task="document-question-answering"))
    assert bundle["packages.txt"] == "tesseract-ocr\n"
    assert "pytesseract" in bundle["requirements.txt"]


def test_readme_front_matter_is_space_metadata() -> None:
    import gradio

    description = "Says how people feel."
    spec = DemoSpec(
        repo_id="acme/sentiment", revision=COMMIT, task="text-classification", description=description
    )
    readme = render_bundle(spec)["README.md"]
    card = SpaceCard(readme)
    assert isinstance(card.data, SpaceCardData)
    assert card.data.sdk == "gradio"
    assert card.data.sdk_version == gradio.__version__
    assert card.data.app_file == "app.py"
    assert card.data.models == ["acme/sentiment"]
    meta = RepoCard(readme).data.to_dict()
    assert meta["title"] == "sentiment"
    assert meta["pinned"] is False
    assert {"emoji", "colorFrom", "colorTo"} <= set(meta)
    assert COMMIT in card.text and description in card.text


def test_rendering_is_deterministic() -> None:
    spec = DemoSpec(repo_id="acme/detector", revision=COMMIT, task="object-detection")
    assert render_bundle(spec) == render_bundle(spec)


def test_requirements_pin_transformers_and_add_task_extras() -> None:
    import transformers

    text = render_bundle(DemoSpec(repo_id="acme/tables", task="table-question-answering"))["requirements.txt"]
    requirements = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert requirements == [f"transformers=={transformers.__version__}", "torch", "pandas"]


def test_revisions_must_be_commits() -> None:
    with pytest.raises(ValueError, match="40-hex"):
        DemoSpec(repo_id="acme/x", revision="main")
    with pytest.raises(ValueError, match="compare_revision"):
        DemoSpec(repo_id="acme/x", compare_revision="v1.0")


def test_python_literal_writes_only_plain_data() -> None:
    value = {"a": [1, 2.5, None, True, "x'\"\n"]}
    assert ast.literal_eval(python_literal(value)) == value
    with pytest.raises(ValueError):
        python_literal(object())
    with pytest.raises(ValueError):
        python_literal(float("nan"))


def test_widget_examples_become_rows() -> None:
    widget = [
        {"text": "I love it", "candidate_labels": ["happy", "sad"], "multi_class": True, "example_title": "M"},
        {"text": "Stock prices fell", "candidate_labels": "economy, sport"},
        {"example_title": "no text, skipped"},
        {"text": {1, 2}, "example_title": "not plain data, skipped"},
    ]
    rows, titles = example_rows(TASKS["zero-shot-classification"], widget)
    assert rows == [["I love it", "happy, sad", True], ["Stock prices fell", "economy, sport", False]]
    assert titles == ["M", ""]
    # A trailing field without a default cannot be padded, so every row is cut to the common part.
    uneven = [{"text": "a", "candidate_labels": "x"}, {"text": "b"}]
    assert example_rows(TASKS["zero-shot-classification"], uneven)[0] == [["a"], ["b"]]
    table = {"text": "Stars?", "table": {"repo": ["a", "b"], "stars": [1, 2]}}
    table_rows, _ = example_rows(TASKS["table-question-answering"], [table])
    assert table_rows == [["Stars?", {"headers": ["repo", "stars"], "data": [["a", "1"], ["b", "2"]]}]]
    similarity = {"source_sentence": "a", "sentences": ["b", "c"]}
    assert example_rows(TASKS["sentence-similarity"], [similarity])[0] == [["a", "b\nc"]]


def test_task_defaults_when_the_card_has_no_examples() -> None:
    rows, titles = example_rows(TASKS["fill-mask"], [])
    assert rows == [list(row) for row in TASKS["fill-mask"].default_examples] and titles is None


def test_card_examples_reach_the_app(task_models: dict[str, Path]) -> None:
    examples = [{"text": "Custom example", "example_title": "Mine"}]
    spec = _spec(task_models["text-classification"], examples=examples)
    load_demo(render_bundle(spec)["app.py"], name="vitrine_test_card_examples")
    module = sys.modules["vitrine_test_card_examples"]
    assert module.EXAMPLES == [["Custom example"]] and module.EXAMPLE_LABELS == ["Mine"]


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server for the files in a temp folder: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/", root
        finally:
            server.shutdown()
            thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_media_examples_are_drawn_fetched_or_skipped(
    task_models: dict[str, Path], media: Media, file_server: tuple[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, www = file_server
    shutil.copy(media.image, www / "real.png")
    (www / "secret.png").write_text("internal data, not an image")
    space = tmp_path / "space"
    (space / "examples").mkdir(parents=True)
    shutil.copy(media.image, space / "examples" / "shipped.png")
    (tmp_path / "outside.png").write_bytes(media.image.read_bytes())
    widget = [
        {"src": "vitrine-example.png", "example_title": "builtin"},
        {"src": base + "real.png", "example_title": "fetched"},
        {"src": "examples/shipped.png", "example_title": "shipped"},
        # Port 9 (discard) refuses at once; the others are not images or not inside the Space.
        {"src": "http://127.0.0.1:9/missing.png"},
        {"src": base + "secret.png"},
        {"src": "../outside.png"},
        {"src": str(tmp_path / "outside.png")},
    ]
    spec = _spec(task_models["image-classification"], task="image-classification", examples=widget)
    load_demo(render_bundle(spec)["app.py"], name="vitrine_test_media_examples", path=space / "app.py")
    module = sys.modules["vitrine_test_media_examples"]
    assert module.EXAMPLE_LABELS == ["builtin", "fetched", "shipped"]
    assert all(Path(row[0]).is_file() for row in module.EXAMPLES)
    assert Path(module.EXAMPLES[2][0]) == (space / "examples" / "shipped.png").resolve()
    log = capsys.readouterr().out
    assert "Skipping example http://127.0.0.1:9/missing.png" in log
    assert f"Skipping example {base}secret.png: not an image file" in log


def test_card_text_stays_data(task_models: dict[str, Path]) -> None:
    hostile = 'Nice model """ + \'\'\'\nimport os; os._exit(3)\n{{ task }} {% raw %}'
    spec = _spec(task_models["text-classification"], title='T"itle', description=hostile, labels=["a'", 'b"'])
    load_demo(render_bundle(spec)["app.py"], name="vitrine_test_hostile")
    module = sys.modules["vitrine_test_hostile"]
    assert (module.TITLE, module.DESCRIPTION, module.LABELS) == ('T"itle', hostile, ["a'", 'b"'])


def test_load_demo_requires_a_blocks_named_demo() -> None:
    with pytest.raises(TypeError, match="demo"):
        load_demo("demo = 42\n", name="vitrine_test_no_demo")
    assert "vitrine_test_no_demo" not in sys.modules


def test_spec_from_card_reads_task_widget_labels_and_body() -> None:
    card = (
        "---\npipeline_tag: text-classification\nlicense: mit\nwidget:\n"
        "- text: I like you.\n  example_title: Friendly\n---\n\n# Sentiment\n\nA small model.\n"
    )
    config = {"model_type": "bert", "id2label": {"1": "positive", "0": "negative"}}
    spec = spec_from_card("acme/sentiment", card, revision=COMMIT, config=config)
    assert (spec.task, spec.revision) == ("text-classification", COMMIT)
    assert spec.labels == ["negative", "positive"]
    assert spec.examples == [{"text": "I like you.", "example_title": "Friendly"}]
    assert spec.description == "# Sentiment\n\nA small model."
    assert spec.model_info == {"license": "mit", "model_type": "bert"}


def test_spec_from_a_broken_card_keeps_the_body() -> None:
    spec = spec_from_card("acme/x", "---\nfoo: [1, 2\n---\nStill a card.\n")
    assert (spec.task, spec.description) == (None, "Still a card.")
    assert spec_from_card("acme/x", "---\npipeline_tag: [a]\n---\nBody\n").task is None


@pytest.mark.parametrize(
    ("task", "reason"),
    [
        (None, "declares no `pipeline_tag`"),
        ("text-to-video", "no demo template for the task `text-to-video`"),
        # Tasks of the transformers pipeline registry with no demo say what is missing.
        ("mask-generation", "has no torchvision"),
        ("any-to-any", "no single fixed demo fits it"),
    ],
)
def test_unknown_task_renders_an_info_page(task: str | None, reason: str, serve: Callable) -> None:
    import gradio as gr

    spec = DemoSpec(
        repo_id="acme/mystery", revision=COMMIT, task=task, description="Card body.",
        model_info={"model_type": "mystery", "architectures": ["MysteryModel"]},
    )
    bundle = render_bundle(spec)
    assert "transformers" not in bundle["requirements.txt"]
    assert SpaceCard(bundle["README.md"]).data.to_dict()["sdk"] == "gradio"
    demo = load_demo(bundle["app.py"], name=f"vitrine_test_info_{task}".replace("-", "_"))
    markdown = "\n".join(b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown))
    assert "No demo was generated" in markdown and reason in markdown
    assert "MysteryModel" in markdown and COMMIT in markdown and "`text-classification`" in markdown
    with serve(demo) as url:
        config = httpx.get(url + "config", timeout=10).json()
    assert reason in str(config)
