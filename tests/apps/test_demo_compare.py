"""Compare mode: one input, both versions' outputs side by side."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gradio_client import Client, handle_file

from apps.demo import DemoSpec, load_demo, render_bundle
from tests.apps.checks import Media, assert_label_matches

OLD, NEW = "1" * 40, "2" * 40


def test_compare_mode_returns_both_outputs(task_models: dict[str, Path], serve: Callable) -> None:
    import gradio as gr
    from transformers import pipeline

    model = str(task_models["text-classification"])
    spec = DemoSpec(repo_id=model, task="text-classification", revision=OLD, compare_revision=NEW)
    demo = load_demo(render_bundle(spec)["app.py"], name="vitrine_test_compare_text")
    text = "The service was slow and the food was awful"
    with serve(demo) as url:
        first, second = Client(url, verbose=False).predict(text, api_name="/predict")
    # A local directory has one version only, so both sides must agree with the pipeline.
    expected = pipeline("text-classification", model=model)(text, top_k=None)
    assert_label_matches(first, expected)
    assert_label_matches(second, expected)
    labels = [block.label for block in demo.blocks.values() if isinstance(block, gr.Label)]
    assert labels == ["Labels @ 1111111", "Labels @ 2222222"]


def test_compare_mode_keeps_every_output_of_each_side(
    task_models: dict[str, Path], media: Media, serve: Callable
) -> None:
    model = str(task_models["object-detection"])
    spec = DemoSpec(repo_id=model, task="object-detection", compare_revision=NEW)
    demo = load_demo(render_bundle(spec)["app.py"], name="vitrine_test_compare_detection")
    with serve(demo) as url:
        result = Client(url, verbose=False).predict(handle_file(str(media.image)), 0.0, api_name="/predict")
    annotated_a, boxes_a, annotated_b, boxes_b = result
    assert boxes_a == boxes_b and len(boxes_a) > 0
    assert len(annotated_a["annotations"]) == len(annotated_b["annotations"]) == len(boxes_a)
