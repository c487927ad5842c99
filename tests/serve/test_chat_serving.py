"""Chat end to end: a tiny model chat-tuned on a few pairs, answered through POST /v1/chat/completions by the official
openai package (streamed and not), and through genlab chat in a terminal, where Ctrl-C stops an answer and the
conversation goes on."""

from __future__ import annotations

import json
import subprocess
import sys

import openai
import pytest

from genlab import api
from tests.serve.conftest import Running

PAIRS = [("What is a list?", "an ordered sequence"), ("What is a dict?", "a mapping of keys"),
         ("What is a set?", "unique items"), ("What is a tuple?", "a fixed sequence")]


@pytest.fixture(scope="module")
def bot(tmp_path_factory, small_corpus):
    root = tmp_path_factory.mktemp("chat")
    base = api.train(str(small_corpus), family="gpt", out=str(root / "base"), n_layer=2, n_head=2, n_embd=64,
                     block_size=64, max_steps=60, eval_interval=60, eval_batches=1, seed=0, quiet=True)
    data = root / "pairs.jsonl"
    data.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                       {"role": "assistant", "content": a}]})
                              for q, a in PAIRS * 3) + "\n")
    return base, api.finetune(base, str(data), out=root / "bot", chat=True, max_steps=250, lr=3e-3, min_lr=3e-4,
                              eval_interval=250, batch_size=8, quiet=True)


@pytest.fixture(scope="module")
def client(bot):
    from genlab.serve import create_app, load_models

    base, chat = bot
    running = Running(create_app(load_models([base, chat], names=["base", "bot"])))
    yield openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
    running.stop()


def test_chat_completions_through_the_openai_package(client, bot):
    m = api.load(bot[1])
    for question, answer in PAIRS:
        out = client.chat.completions.create(model="bot", messages=[{"role": "user", "content": question}],
                                             temperature=0, max_tokens=40)
        assert out.object == "chat.completion" and out.choices[0].message.role == "assistant"
        assert out.choices[0].message.content == answer and out.choices[0].finish_reason == "stop"
        assert out.usage.completion_tokens > 0 and out.usage.total_tokens == out.usage.prompt_tokens + \
            out.usage.completion_tokens
    same = m.chat([{"role": "user", "content": "What is a set?"}], temperature=0.9, seed=5, max_new_tokens=40,
                  num_samples=2)
    out = client.chat.completions.create(model="bot", messages=[{"role": "user", "content": "What is a set?"}],
                                         temperature=0.9, seed=5, max_tokens=40, n=2)
    assert [c.message.content for c in out.choices] == same  # the server answers what genlab.load's chat does


def test_a_streamed_chat_is_the_answer_delta_by_delta(client):
    chunks = list(client.chat.completions.create(model="bot", messages=[{"role": "user", "content": "What is a dict?"}],
                                                 temperature=0, max_tokens=40, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "a mapping of keys"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0 and all(c.object == "chat.completion.chunk" for c in chunks)


def test_chat_refuses_what_it_cannot_answer(client):
    with pytest.raises(openai.BadRequestError, match="has no chat template"):
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="context") as too_long:
        client.chat.completions.create(model="bot", messages=[{"role": "user", "content": "a " * 400}])
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model="bot", messages=[{"role": "robot", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="marker"):
        client.chat.completions.create(model="bot", messages=[{"role": "user", "content": "<|im_end|>"}])


def test_genlab_chat_in_a_terminal(bot):
    _, chat = bot
    script = "/temperature 0\nWhat is a list?\n/reset\nWhat is a tuple?\n/nonsense\n/bye\n"
    done = subprocess.run([sys.executable, "-m", "genlab", "chat", str(chat), "--max-new-tokens", "40"],
                          input=script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["an ordered sequence", "a fixed sequence"]
    assert "(temperature 0.0)" in done.stderr and "unknown command /nonsense" in done.stderr
    refused = subprocess.run([sys.executable, "-m", "genlab", "chat", str(bot[0])], input="hi\n",
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "has no chat template" in refused.stderr


def test_ctrl_c_stops_an_answer_and_the_chat_goes_on(bot, monkeypatch, capsys):
    """Ctrl-C is a KeyboardInterrupt in the middle of the stream: the answer so far stays, the chat goes on."""
    import io

    from genlab.cli import main
    from genlab.text.sample import TextModel

    real, calls = TextModel.chat_stream, []

    def interrupted(self, messages, **controls):
        calls.append([m["content"] for m in messages])
        if len(calls) == 1:
            yield "half an ans"
            raise KeyboardInterrupt
        yield from real(self, messages, **controls)

    monkeypatch.setattr(TextModel, "chat_stream", interrupted)
    monkeypatch.setattr(sys, "stdin", io.StringIO("tell me everything\n/temperature 0\nWhat is a set?\n"))
    assert main(["chat", str(bot[1]), "--max-new-tokens", "40"]) == 0
    out, err = capsys.readouterr()
    assert "(stopped)" in err and out.splitlines() == ["half an ans", "unique items"]
    assert calls[1] == ["tell me everything", "half an ans", "What is a set?"]  # what was said before Ctrl-C stays
