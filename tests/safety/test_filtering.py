"""The content filter where genlab samples: a run's own content_filter.toml or --content-filter, prompts refused
(one line and exit 2 in the terminal, 400 content_filter over HTTP), generated words redacted or withheld the same
way whether the text is made whole, streamed or batched in the server, and what happened kept in provenance."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx2 as httpx
import pytest

from genlab import api
from genlab.errors import GenlabError
from genlab.safety.content_filter import ContentFiltered

# a neutral word for the prompts, and the letter e (a pattern: inside words too), which every sample holds
REDACT = 'words = ["zebra"]\npatterns = ["e"]\nmask = "\u25c6"\n'
WITHHOLD = 'words = ["zebra"]\npatterns = ["q"]\naction = "withhold"\n'


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_corpus):
    run = api.train(str(small_corpus), family="gpt", out=str(tmp_path_factory.mktemp("filter") / "docs"), n_layer=1,
                    n_head=2, n_embd=32, block_size=32, max_steps=40, eval_interval=40, eval_batches=1, seed=0,
                    quiet=True)
    (run / "content_filter.toml").write_text(REDACT)  # the run's own setting
    return run


def test_a_runs_filter_redacts_alike_whole_and_streamed(run):
    m = api.load(run)
    controls = dict(prompt="A ", max_new_tokens=120, seed=4, temperature=1.0)
    whole = m.generate(**controls)
    record = m.endings()[0]["provenance"]["content_filter"]
    plain = api.load(run, content_filter="off").generate(**controls)
    assert "e" in plain.lower() and "\u25c6" in whole and "e" not in whole.lower()
    assert whole == plain.replace("e", "\u25c6").replace("E", "\u25c6")  # the matched characters, nothing else
    assert record["outcome"] == "redacted" and record["matches"] == whole.count("\u25c6") and "zebra" not in str(record)
    assert "".join(m.stream(**controls)) == whole  # held-back words come out redacted the same way
    with pytest.raises(ContentFiltered, match="refused by the content filter"):
        m.generate(prompt="a zebra ran", max_new_tokens=5)
    path = m.write(m.generate(**controls), run / "out")[0]
    assert json.loads(path.with_suffix(".json").read_text())["content_filter"]["action"] == "redact"


def test_withheld_samples_end_at_the_first_match(run, tmp_path):
    (tmp_path / "f.toml").write_text(WITHHOLD)
    m = api.load(run, content_filter=tmp_path / "f.toml")
    plain = api.load(run, content_filter="off")
    controls = dict(prompt="", max_new_tokens=400, seed=1, temperature=1.5, num_samples=4)
    texts, free = m.generate(**controls), plain.generate(**controls)
    for text, other, end in zip(texts, free, m.endings(), strict=True):
        if "q" in other.lower():
            assert text == "" and end["finish_reason"] == "content_filter"
            assert end["provenance"]["content_filter"]["outcome"] == "withheld"
        else:
            assert text == other and end["provenance"]["content_filter"]["outcome"] == "passed"
    assert any(e["finish_reason"] == "content_filter" for e in m.endings())
    streamed = "".join(m.stream(**{**controls, "num_samples": 1}))
    assert "q" not in streamed.lower()  # the stream stopped before the word that held it
    with pytest.raises(GenlabError, match="refused"):
        m.generate(prompt="ZEBRA", max_new_tokens=3)


def test_the_command_line_refuses_in_one_line(run):
    def genlab(*args):
        return subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True, timeout=300)

    refused = genlab("sample", str(run), "--prompt", "z e b r a", "--max-new-tokens", "5")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "refused by the content filter" in refused.stderr and "--content-filter off" in refused.stderr
    allowed = genlab("sample", str(run), "--prompt", "z e b r a", "--max-new-tokens", "5", "--content-filter", "off")
    assert allowed.returncode == 0, allowed.stderr
    missing = genlab("sample", str(run), "--content-filter", str(run / "nope.toml"), "--max-new-tokens", "5")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_the_server_refuses_with_400_and_redacts_batched_completions(run):
    from genlab.serve import create_app
    from tests.serve.conftest import Running

    m = api.load(run)
    server = Running(create_app({"docs": m}))
    try:
        r = httpx.post(server.url + "/v1/completions", json={"model": "docs", "prompt": "my zebra"}, timeout=30)
        error = r.json()["error"]
        assert r.status_code == 400 and error["type"] == "content_filter" and "zebra" not in error["message"]
        body = {"model": "docs", "prompt": "A ", "max_tokens": 120, "seed": 4, "temperature": 1.0}
        got = httpx.post(server.url + "/v1/completions", json=body, timeout=60).json()["choices"][0]
        assert got["text"] == m.generate(prompt="A ", max_new_tokens=120, seed=4, temperature=1.0)
        assert got["provenance"]["content_filter"]["outcome"] == "redacted"
    finally:
        server.stop()
