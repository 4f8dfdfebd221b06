"""Schemathesis against a throw-away hub's own OpenAPI: no 5xx, and every status it answers is documented."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from huggingface_hub import HfApi
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.conftest import Server, start_server

# Wall-clock budget of one parametrisation (two run, anonymous and with a token): well under two minutes in all.
BUDGET_S = 45
EXAMPLES = 6  # per operation and mode: the schema has ~90 operations
SEED = {"plural": "models", "namespace": "acme", "name": "fuzz", "revision": "main"}


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub of its own: what the fuzzer creates, moves or deletes cannot disturb other tests."""
    server = start_server(Path(tmp_path_factory.mktemp("fuzz-hub")))
    api = HfApi(endpoint=server.url, token=server.admin_token)
    api.create_repo("acme/fuzz")
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="README.md", repo_id="acme/fuzz")
    yield server
    server.stop()


@pytest.mark.parametrize("with_token", [False, True], ids=["anonymous", "admin"])
def test_fuzzed_requests_get_no_5xx_and_only_documented_statuses(fuzz_hub: Server, with_token: bool) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_hub.url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_hub.admin_token}"} if with_token else {}
    deadline = time.monotonic() + BUDGET_S
    failures: list[str] = []
    fuzzed: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the schema really lists the hub's routes

    for operation in operations:
        if time.monotonic() > deadline:
            break
        # Free strings mostly meet the hub's name checks; pinned to the seeded repo they reach deeper.
        names = {p.name for p in operation.path_parameters}
        seeded = {k: v for k, v in SEED.items() if k in names}
        runs = [(GenerationMode.POSITIVE, {}), (GenerationMode.POSITIVE, seeded)] if seeded else \
            [(GenerationMode.POSITIVE, {})]
        # Only a body or a query can be made invalid: every path parameter is a free string.
        if operation.body or operation.query:
            runs.append((GenerationMode.NEGATIVE, seeded))
        for mode, fixed in runs:

            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=fuzz_hub.url, headers=headers, timeout=30,
                                       checks=[not_a_server_error, status_code_conformance])

            try:
                run()
            except Unsatisfiable:
                pass  # no invalid input exists for this operation
            except (Exception, FailureGroup) as exc:  # collect every operation's failure, not just the first
                failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
        fuzzed.append(operation.label)

    assert not failures, "\n\n".join(failures)
    # The budget is generous: running out of it means the fuzz (or the hub) became slow.
    assert len(fuzzed) == len(operations), f"budget spent after {len(fuzzed)}/{len(operations)} operations"


def test_every_operation_documents_the_error_shape(fuzz_hub: Server) -> None:
    import httpx

    spec = httpx.get(f"{fuzz_hub.url}/api/openapi.json").json()
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            documented = set(operation["responses"])
            assert {"400", "401", "403", "404", "405", "409", "412", "413", "422", "503", "507"} <= documented, \
                (method, path)
