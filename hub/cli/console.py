"""`vitrine console`: start the Streamlit console pointed at a hub (it talks to the hub only over HTTP)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hub.cli.client import CliError

APP = Path(__file__).resolve().parents[2] / "apps" / "console" / "app.py"


def cmd_console(args: argparse.Namespace) -> int:
    """Run `streamlit run apps/console/app.py` on `--port` with the hub URL and token in its environment."""
    if not APP.is_file():
        raise CliError(f"The console is not installed here ({APP} is missing); run it from a Vitrine checkout.")
    env = dict(os.environ)
    if args.hub:
        env["VITRINE_ENDPOINT"] = args.hub
    if args.token:
        env["VITRINE_TOKEN"] = args.token
    from registry.settings import Settings

    # Streamlit refuses a larger upload body than this, whatever the console's own upload box allows.
    max_upload_mb = Settings.from_env(env).console_max_upload_mb
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
           "--server.maxUploadSize", str(max_upload_mb)]
    print(f"Console on http://127.0.0.1:{args.port} (hub: {env.get('VITRINE_ENDPOINT') or 'from VITRINE_ENDPOINT'})",
          flush=True)
    return subprocess.call(cmd, env=env, cwd=APP.parents[2])


def register(sub: Any) -> None:
    """Add `console` to the `vitrine` parser."""
    p = sub.add_parser("console", help="start the Streamlit console")
    p.add_argument("--hub", default=None, help="hub URL (default: $VITRINE_ENDPOINT, $HF_ENDPOINT, else local)")
    p.add_argument("--port", type=int, default=8501, help="port the console listens on")
    p.add_argument("--token", default=None, help="token the console signs in with (default: $VITRINE_TOKEN)")
    p.set_defaults(func=cmd_console)
