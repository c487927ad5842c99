"""Request bodies drawn from the app's own OpenAPI schema (schemathesis, over hypothesis), valid and invalid: the
server never answers 5xx, whatever a client sends."""

from __future__ import annotations

from collections import Counter

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.serve.conftest import Running


@pytest.fixture(scope="module")
def fuzzed(models, tmp_path_factory):
    from genlab.serve import Limits, create_app

    # small caps: any valid request is a few tokens or steps of work, so hundreds of them run in seconds
    limits = Limits(max_tokens=8, max_n=2, max_prompts=2, max_images=2, max_steps=3, max_stop=2)
    running = Running(create_app(models, store=tmp_path_factory.mktemp("fuzz") / "feedback.sqlite", limits=limits))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed):
    schema = schemathesis.openapi.from_url(fuzzed.url + "/openapi.json")
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=12,
                                    deterministic=True)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")
SERVED_AS = {"/v1/completions": "docs", "/v1/images/generations": "digits", "/v1/music/generations": "folk"}
answered: Counter = Counter()  # (path, status class) over the whole module


@schema.parametrize()
@hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck), derandomize=True)
def test_no_request_gets_a_server_error(case, fuzzed):
    if isinstance(case.body, dict) and case.path in SERVED_AS:
        case.body["model"] = SERVED_AS[case.path]  # a served model, so that valid bodies reach it and generate
    response = case.call(base_url=fuzzed.url, timeout=60)
    answered[case.path, response.status_code // 100] += 1
    assert response.status_code < 500, f"{case.method} {case.formatted_path} {case.body!r} -> " \
                                       f"{response.status_code} {response.text[:300]}"
    if response.status_code >= 400 and "application/json" in str(response.headers.get("content-type")):
        error = response.json().get("error")
        assert error is not None and {"message", "type", "param", "code"} <= set(error)  # OpenAI's error shape


def test_the_fuzzing_reached_the_models():
    """Valid bodies made outputs and invalid ones were refused, on every generating route (not only refusals)."""
    for path in ("/v1/completions", "/v1/images/generations", "/v1/music/generations"):
        assert answered[path, 2] > 0 and answered[path, 4] > 0, (path, answered)
