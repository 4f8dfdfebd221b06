"""Space hosting: each model version's live Gradio demo, its bundle, and how a demo reaches its model.

- `bundle.py`: the registry's facts and rules (registry/versions.py, registry/demos.py) rendered by apps/demo;
- `loader.py`: the one place that tells a demo where its model is (a folder of links into the blob store);
- `host.py`: the LRU of loaded demos, one build at a time, a check of the rules on every request.
"""

from __future__ import annotations

from hub.spaces.bundle import Bundle, render_model_bundle
from hub.spaces.host import DemoKey, SpaceHost, host_of

__all__ = ["Bundle", "DemoKey", "SpaceHost", "host_of", "render_model_bundle"]
