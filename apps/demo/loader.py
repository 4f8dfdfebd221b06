"""Run a rendered app.py in-process and hand back its Gradio `demo`, for live mounting."""

from __future__ import annotations

import linecache
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr


def load_demo(app_py_source: str, *, name: str, path: Path | None = None,
              preset: dict[str, object] | None = None) -> gr.Blocks:
    """Execute `app_py_source` as a fresh module called `name` and return its `demo`.

    The hub mounts the returned object, so the live demo is exactly the exported app.py. The
    module is registered in `sys.modules` (replacing an earlier load under the same name) so
    tracebacks, `inspect` and Gradio's type-hint lookups resolve its functions.

    Args:
        app_py_source: A rendered app.py (from `render_bundle`).
        name: Module name, unique per Space (e.g. "vitrine_space_acme_sentiment").
        path: Where app.py lives on disk, if it does; bundled example files are found beside it.
        preset: Module globals set before app.py runs, e.g. `MODEL_DIRS` (commit -> local folder of the
            model's files), which the rendered app.py reads instead of downloading the model.

    Raises:
        TypeError: the source defines no `gr.Blocks` named `demo`.
        Exception: whatever app.py raises while loading, e.g. OSError when the model cannot be
            fetched; nothing is left registered in that case.
    """
    import gradio as gr

    filename = str(path) if path is not None else f"<vitrine-space {name}>"
    module = types.ModuleType(name)
    module.__dict__.update(preset or {})
    if path is not None:
        # app.py looks for bundled example files next to its __file__.
        module.__file__ = filename
    # Source for tracebacks when the app has no file on disk.
    linecache.cache[filename] = (len(app_py_source), None, app_py_source.splitlines(True), filename)
    code = compile(app_py_source, filename, "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - rendered from our templates, card data as literals
    except BaseException:
        sys.modules.pop(name, None)
        raise
    demo = module.__dict__.get("demo")
    if not isinstance(demo, gr.Blocks):
        sys.modules.pop(name, None)
        raise TypeError(f"app.py for {name!r} defines no gr.Blocks named `demo`")
    return demo
