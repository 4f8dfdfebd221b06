"""The `vitrine` command, one module per command group.

- `operate.py`: `serve`, `token create`, `fsck`, `gc`, and `db.py`: `db upgrade`, `db current`, which open the hub's
  own home; `migrate.py`: `migrate-storage`, which copies a stopped hub's home into PostgreSQL + S3;
- `models.py`: `card write`, `diff`; `spaces.py`: `space export`, `space publish`, `space link`; `evals.py`: `eval`;
  `datasets.py`: `dataset import`, `dataset sql`, `dataset splits`;
  `promote.py`: `aliases`, `promote`, `rollback`; `endpoint.py`: `endpoint serve|traffic|log|compare|drift|
  feedback|accuracy`; `webhooks.py`: `webhook add|list|remove|deliveries|replay`;
  `status.py`: `status`, how the hub is deployed; `console.py`: `console`, which starts the Streamlit console
  pointed at a hub;
  these talk to a hub over HTTP, as any user could script them, through the helpers of `client.py`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from huggingface_hub.errors import HfHubHTTPError

from hub.cli import console, datasets, endpoint, evals, migrate, models, operate, promote, spaces, status, webhooks
from hub.cli import db as db_cli
from hub.cli.client import CliError
from registry.errors import RegistryError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `vitrine`."""
    parser = argparse.ArgumentParser(prog="vitrine", description="Vitrine: a self-hosted model hub.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (operate, db_cli, migrate, status, console, models, spaces, evals, datasets, promote, endpoint,
                  webhooks):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vitrine` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RegistryError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except HfHubHTTPError as exc:  # raised by huggingface_hub in the client-side commands; readable as is
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
