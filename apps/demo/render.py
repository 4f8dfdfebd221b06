"""Render a `DemoSpec` into Space files: app.py, requirements.txt and README.md."""

from __future__ import annotations

import hashlib
import json
import math
import pprint
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jinja2
import yaml

from apps.demo.spec import DemoSpec
from apps.demo.tasks import BUILTIN_MEDIA, MEDIA_FIELDS, TASKS, UNSUPPORTED, TaskDemo

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
SPACE_TEMPLATES_DIR = TEMPLATES_DIR / "spaces"

# The colours the Spaces front matter accepts.
_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
# Values for optional trailing widget fields, so examples that omit them line up with those that don't.
_FIELD_DEFAULTS: dict[str, Any] = {"multi_class": False}


def render_bundle(spec: DemoSpec) -> dict[str, str]:
    """Render the Space files for `spec`, keyed by path: app.py, requirements.txt, README.md (+ packages.txt).

    The output depends only on `spec` and the installed gradio/transformers versions, so
    rendering the same model version twice gives byte-identical files (and the same commit).
    An unknown or missing task renders an info page explaining why there is no demo.
    """
    task = TASKS.get(spec.task) if spec.task else None
    app = _render_demo(spec, task) if task is not None else _render_info_page(spec)
    files = {
        "app.py": app,
        "requirements.txt": _render_requirements(task),
        "README.md": _render_readme(spec, task),
    }
    if task is not None and task.system_packages:
        files["packages.txt"] = "".join(f"{name}\n" for name in task.system_packages)
    return files


def example_rows(task: TaskDemo, examples: list[Any]) -> tuple[list[list[Any]], list[str] | None]:
    """Turn card widget entries (or ready rows) into example rows and their titles.

    Widget dicts are mapped through `task.fields`; entries missing the first field, or holding
    values that are not plain data, are skipped. Returns the task's default examples when
    nothing usable is given.
    """
    rows: list[list[Any]] = []
    titles: list[str] = []
    for example in examples:
        if isinstance(example, dict):
            row = _row_from_widget(task, example)
            title = str(example.get("example_title") or "")
        elif isinstance(example, (list, tuple)) and 0 < len(example) <= len(task.fields):
            row, title = list(example), ""
        else:
            row, title = None, ""
        if row is not None and _is_literal(row):
            rows.append(row)
            titles.append(title)
    if not rows:
        return [list(row) for row in task.default_examples], None
    return _align(task, rows), (titles if any(titles) else None)


def _align(task: TaskDemo, rows: list[list[Any]]) -> list[list[Any]]:
    # gr.Examples fills the same leading inputs for every row: pad with defaults, else cut.
    width = max(len(row) for row in rows)
    padded = []
    for row in rows:
        missing = task.fields[len(row) : width]
        if all(name in _FIELD_DEFAULTS for name in missing):
            row = row + [_FIELD_DEFAULTS[name] for name in missing]
        padded.append(row)
    width = min(len(row) for row in padded)
    return [row[:width] for row in padded]


def _is_literal(value: Any) -> bool:
    try:
        _check_literal(value)
    except ValueError:
        return False
    return True


def _row_from_widget(task: TaskDemo, example: dict[str, Any]) -> list[Any] | None:
    row: list[Any] = []
    for name in task.fields:
        if name not in example:
            break
        row.append(_widget_value(name, example[name]))
    return row or None


def _widget_value(name: str, value: Any) -> Any:
    # Widget YAML allows lists where the demo has one textbox; join them the way a user would type.
    if name == "candidate_labels" and isinstance(value, list):
        return ", ".join(str(label) for label in value)
    if name == "sentences" and isinstance(value, list):
        return "\n".join(str(sentence) for sentence in value)
    if name == "table" and isinstance(value, dict) and "data" not in value:
        headers = [str(column) for column in value]
        columns = [list(cells) for cells in value.values()]
        data = [[str(cell) for cell in row] for row in zip(*columns)]
        return {"headers": headers, "data": data}
    if name == "questions" and isinstance(value, dict):
        return json.dumps(value, indent=2, ensure_ascii=False)
    if name == "multi_class":
        return bool(value)
    if name in MEDIA_FIELDS:
        return str(value)
    return value


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(SPACE_TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = python_literal
    return env


def python_literal(value: Any) -> str:
    """Python source for a plain value; card text can never become code this way.

    Raises:
        ValueError: for anything that is not None, bool, int, finite float, str, list, tuple
            or a dict with str keys.
    """
    _check_literal(value)
    # pformat wraps long lists and strings over lines and still writes plain literals.
    return pprint.pformat(value, width=100, sort_dicts=False)


def _check_literal(value: Any) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write non-finite float {value!r} into a Space app")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_literal(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"cannot write dict key {key!r} into a Space app: keys must be str")
            _check_literal(item)
        return
    raise ValueError(f"cannot write {type(value).__name__} value {value!r} into a Space app")


def _render_demo(spec: DemoSpec, task: TaskDemo) -> str:
    rows, titles = example_rows(task, spec.examples)
    context = {
        "task": spec.task,
        "pipeline_task": task.pipeline or spec.task,
        "repo_id": spec.repo_id,
        "revision": spec.revision,
        "compare_revision": spec.compare_revision,
        "title": spec.display_title,
        "description": spec.description,
        # NLI labels of a zero-shot model, say, are not what its demo answers with.
        "labels": [str(label) for label in spec.labels] if task.shows_labels else [],
        "examples": rows,
        "example_labels": titles,
        "media": task.media,
        "builtin_media": list(BUILTIN_MEDIA[task.media]) if task.media else [],
        # Which leading example columns hold media references to resolve when the app starts.
        "media_columns": [i for i, name in enumerate(task.fields) if name in MEDIA_FIELDS],
        "extra": task.extra,
    }
    return _environment().get_template(f"tasks/{task.template}").render(context)


def _render_info_page(spec: DemoSpec) -> str:
    context = {
        "task": spec.task,
        "repo_id": spec.repo_id,
        "revision": spec.revision,
        "title": spec.display_title,
        "info": info_markdown(spec),
    }
    return _environment().get_template("unknown.py.j2").render(context)


def info_markdown(spec: DemoSpec) -> str:
    """Markdown for the page shown instead of a demo: why there is none, and what is known."""
    if spec.task is None:
        reason = (
            "The model card declares no `pipeline_tag`, so Vitrine cannot tell which task this "
            "model performs. Add `pipeline_tag: <task>` to the card's YAML front matter to get a demo."
        )
    elif spec.task in UNSUPPORTED:
        reason = f"There is no demo for the task `{spec.task}`. {UNSUPPORTED[spec.task]}"
    else:
        reason = (
            f"Vitrine has no demo template for the task `{spec.task}`. "
            "Set `pipeline_tag` in the card to one of the supported tasks to get a demo."
        )
    facts: dict[str, Any] = {
        "Repository": spec.repo_id,
        "Revision": spec.revision or "main",
        "Task": spec.task or "none declared",
    }
    if spec.labels:
        facts["Labels"] = spec.labels
    facts.update(spec.model_info)
    lines = [
        f"# {spec.display_title}",
        "",
        f"**No demo was generated for this model.** {reason}",
        "",
        "| | |",
        "|---|---|",
        *(f"| {_cell(key)} | {_cell(value)} |" for key, value in facts.items()),
        "",
        "Supported tasks: " + ", ".join(f"`{name}`" for name in TASKS) + ".",
    ]
    if spec.description:
        lines += ["", "## Model card", "", spec.description]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(item) for item in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _render_requirements(task: TaskDemo | None) -> str:
    lines: list[str] = []
    if task is not None:
        transformers_version = _installed("transformers")
        lines.append(f"transformers=={transformers_version}" if transformers_version else "transformers")
        lines.append("torch")
        lines.extend(task.requirements)
    env = _environment()
    return env.get_template("requirements.txt.j2").render(
        requirements=lines, gradio_version=_installed("gradio") or "(any)"
    )


def _render_readme(spec: DemoSpec, task: TaskDemo | None) -> str:
    # Colours come from the repo id so re-rendering never changes the README by chance.
    digest = hashlib.sha256(spec.repo_id.encode()).digest()
    meta: dict[str, Any] = {
        "title": spec.display_title,
        "emoji": task.emoji if task is not None else "📄",
        "colorFrom": _COLORS[digest[0] % len(_COLORS)],
        "colorTo": _COLORS[digest[1] % len(_COLORS)],
        "sdk": "gradio",
    }
    gradio_version = _installed("gradio")
    if gradio_version:
        meta["sdk_version"] = gradio_version
    meta.update({"app_file": "app.py", "models": [spec.repo_id], "pinned": False})
    front_matter = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()
    return _environment().get_template("README.md.j2").render(
        front_matter=front_matter, body=_readme_body(spec, task)
    )


def _readme_body(spec: DemoSpec, task: TaskDemo | None) -> str:
    pinned = f"commit `{spec.revision}`" if spec.revision else "the default branch"
    if task is None:
        intro = f"Model info page for `{spec.repo_id}` at {pinned}: there is no demo for its task."
    elif spec.compare_revision:
        intro = (
            f"{spec.task} demo comparing `{spec.repo_id}` at {pinned} with commit "
            f"`{spec.compare_revision}` side by side."
        )
    else:
        intro = f"{spec.task} demo of `{spec.repo_id}` at {pinned}."
    body = intro + " Generated by Vitrine."
    if spec.description:
        body += "\n\n" + spec.description.strip()
    return body


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
