"""Gradio demo generator: a model version (`DemoSpec`) -> a Space bundle -> a live `gr.Blocks`.

`render_bundle` writes the Space files from `templates/spaces/`; `load_demo` runs the rendered
app.py in-process so the hub can mount exactly what it exports.
"""

from __future__ import annotations

from apps.demo.loader import load_demo
from apps.demo.render import TEMPLATES_DIR, example_rows, info_markdown, python_literal, render_bundle
from apps.demo.spec import DemoSpec, spec_from_card, spec_from_version_facts
from apps.demo.tasks import TASKS, TaskDemo, pipeline_task

__all__ = [
    "TASKS",
    "TEMPLATES_DIR",
    "DemoSpec",
    "TaskDemo",
    "example_rows",
    "info_markdown",
    "load_demo",
    "pipeline_task",
    "python_literal",
    "render_bundle",
    "spec_from_card",
    "spec_from_version_facts",
]
