"""Live Gradio demos under /spaces/{owner}/{name} (filled in by the Spaces work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
