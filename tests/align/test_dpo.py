"""DPO: the loss against a hand computation, the scripted-rater loop end to end, rating in the terminal, and the
feedback verbs' one-line errors."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import pytest
import torch

from genlab import api
from genlab.align.dpo import IGNORE, dpo_loss, sequence_logps
from genlab.align.store import FeedbackStore
from tests.user_errors import user_error

WORD = "the"  # the scripted rater prefers samples that contain it
SAMPLE = dict(max_new_tokens=40, temperature=1.0)


def test_the_dpo_loss_equals_a_hand_computation():
    # log-probabilities of two pairs under the policy and the frozen reference
    pc, pr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])
    rc, rr = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -3.0])
    beta = 0.5
    # pair 1: margin = 0.5 * ((-3 + 3.5) - (-4 + 3)) = 0.75; pair 2: 0.5 * ((-5 + 4) - (-2 + 3)) = -1.0
    expected = (-math.log(1 / (1 + math.exp(-0.75))) - math.log(1 / (1 + math.exp(1.0)))) / 2
    loss, figures = dpo_loss(pc, pr, rc, rr, beta)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert figures["reward_accuracy"].item() == 0.5 and figures["reward_margin"].item() == pytest.approx(-0.125)


def test_sequence_log_probabilities_score_only_the_completion():
    class Fixed(torch.nn.Module):  # the same next-token distribution everywhere
        def forward(self, x):
            return torch.log(torch.tensor([0.5, 0.25, 0.25])).expand(*x.shape, 3)

    y = torch.tensor([[IGNORE, 1, 0, IGNORE]])  # the prompt and the padding are not scored
    assert sequence_logps(Fixed(), torch.zeros(1, 4, dtype=torch.long), y).item() == pytest.approx(
        math.log(0.25) + math.log(0.5))


def has_word(text: str) -> bool:
    return WORD in text


def rate_of_word(run, n: int = 64) -> float:
    outs = api.load(run).generate(prompt="", seed=123, num_samples=n, **SAMPLE)
    return sum(map(has_word, outs)) / n


def scripted_judge(prompt: str, left: str, right: str) -> str:
    a, b = has_word(left), has_word(right)
    return "tie" if a == b else "left" if a else "right"


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    out = tmp_path_factory.mktemp("dpo") / "gpt"
    return api.train("text:pydocs", preset="tiny", max_steps=1200, eval_interval=600, seed=1, out=str(out), quiet=True)


def test_a_scripted_rater_and_dpo_raise_the_preferred_rate(tmp_path, parent):
    store = tmp_path / "feedback.sqlite"
    counts = api.rate(parent, [""] * 160, store=store, judge=scripted_judge, **SAMPLE)
    assert counts["pairs"] >= 30
    with FeedbackStore(store, create=False) as kept:
        assert kept.counts()["pairs"] == counts["pairs"] and kept.check_integrity() == "ok"
        pairs = kept.preference_pairs()
        assert all(has_word(p["chosen"]) and not has_word(p["rejected"]) for p in pairs)
        assert len({p["chosen_controls"]["seed"] for p in pairs}) == len(pairs)  # every sample its own seed
    before, ppl_before = rate_of_word(parent), api.evaluate(parent, max_tokens=10_000)["perplexity"]
    run = api.align(parent, store, beta=0.1, out=tmp_path / "aligned", max_steps=60, lr=1e-4, quiet=True)
    after, ppl_after = rate_of_word(run), api.evaluate(run, "text:pydocs", max_tokens=10_000)["perplexity"]
    # fixed seeds: 0.14 -> 0.89, perplexity 14.6 -> 17.6 on this weak tiny model
    assert after > before + 0.3, (before, after)
    assert ppl_after < 1.5 * ppl_before, (ppl_before, ppl_after)
    config = json.loads((run / "config.json").read_text())
    objective = config["train"]["objective"]
    assert objective["method"] == "dpo" and objective["beta"] == 0.1 and len(objective["preferences_sha256"]) == 64
    assert config["parent"]["objective"] == objective
    kept = [json.loads(x) for x in (run / "preferences.jsonl").read_text().splitlines()]
    assert len(kept) == counts["pairs"] and set(kept[0]) == {"prompt", "chosen", "rejected"}


def test_dpo_from_a_trl_file_with_lora(tmp_path, parent):
    pairs = [{"prompt": "The ", "chosen": "the thing is the", "rejected": "xq zv"}] * 8
    file = tmp_path / "prefs.jsonl"
    file.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    run = api.align(parent, file, out=tmp_path / "lora", lora_rank=4, max_steps=20, eval_interval=20, quiet=True)
    assert (run / "adapter_model.safetensors").is_file()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "loss" in json.loads(x)]
    assert rows[-1]["loss"] < math.log(2)  # below the loss of a policy equal to its reference


def test_rating_in_the_terminal_then_exporting(tmp_path, parent):
    store = tmp_path / "fb.sqlite"
    answers = "a\nb\nt\nn\nq\n"
    done = subprocess.run([sys.executable, "-m", "genlab", "rate", str(parent), "--store", str(store),
                           "--max-new-tokens", "12", "--prompts", str(_prompts(tmp_path))], input=answers, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "[a]" in done.stdout and "kept 2 preferences, 1 ties and 1 both-bad" in done.stderr
    out = tmp_path / "pairs.jsonl"
    assert api.feedback_export(store, out) == 2
    assert api.feedback_export(store, tmp_path / "openai.jsonl", format="openai") == 2
    row = json.loads((tmp_path / "openai.jsonl").read_text().splitlines()[0])
    assert row["input"]["messages"][0]["role"] == "user" and row["preferred_output"][0]["role"] == "assistant"
    assert api.feedback_import(tmp_path / "other.sqlite", out) == 2


def _prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("The \nA \nIn \nFor \nWhen \nIf \n", encoding="utf-8")
    return path


def test_terminal_judge_reads_answers_until_one_fits():
    from genlab.align.rate import terminal_judge

    answers, shown = io.StringIO("x\nb\n"), []
    judge = terminal_judge(read=lambda _: answers.readline(), write=shown.append)
    assert judge("p", "left text", "right text") == "right"
    assert "left text" in shown[0] and "right text" in shown[0] and "answer a, b" in shown[1]


def test_feedback_mistakes_are_one_line(tmp_path, capsys, parent):
    empty = tmp_path / "empty.sqlite"
    FeedbackStore(empty).close()
    assert "no preference pairs yet" in user_error(capsys, "align", parent, "--preferences", empty, "--out",
                                                   tmp_path / "a")
    other = tmp_path / "other.sqlite"
    with FeedbackStore(other) as kept:
        kept.record_comparison(output_a={"model": "runs/x", "checkpoint_sha256": "0" * 64, "modality": "text",
                                         "content": "a"},
                               output_b={"model": "runs/x", "checkpoint_sha256": "0" * 64, "modality": "text",
                                         "content": "b"}, prompt="", left="a", winner="a")
    assert "only on other models: runs/x (1)" in user_error(capsys, "align", parent, "--preferences", other,
                                                           "--out", tmp_path / "b")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 10)
    assert "not a feedback store" in user_error(capsys, "align", parent, "--preferences", junk, "--out",
                                                tmp_path / "c")
    assert "not a feedback store" in user_error(capsys, "feedback", "export", tmp_path / "x.jsonl", "--store", junk)
    assert "no feedback store" in user_error(capsys, "feedback", "export", tmp_path / "x.jsonl", "--store",
                                             tmp_path / "none.sqlite")
    strange = tmp_path / "strange.jsonl"
    strange.write_text(json.dumps({"prompt": "", "chosen": "☃☃", "rejected": "ab"}) + "\n", encoding="utf-8")
    assert "never saw" in user_error(capsys, "align", parent, "--preferences", strange, "--out", tmp_path / "d")
    assert "--beta must be positive" in user_error(capsys, "align", parent, "--preferences", strange, "--beta", "0")
    assert not any((tmp_path / x).exists() for x in "abcd")
    assert junk.read_bytes() == b"not a database at all" * 10


def test_the_bradley_terry_loss_equals_a_hand_computation():
    from genlab.align.reward import bradley_terry_loss

    chosen, rejected = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 0.5, 1.0])
    expected = sum(math.log1p(math.exp(-(c - r))) for c, r in ((2, 1), (0, 0.5), (1, 1))) / 3
    loss, accuracy = bradley_terry_loss(chosen, rejected)
    assert loss.item() == pytest.approx(expected, abs=1e-6) and accuracy.item() == pytest.approx(1 / 3)


def test_a_reward_model_learns_the_raters_preference_and_best_of_n_uses_it(tmp_path, parent, capsys):
    store = tmp_path / "feedback.sqlite"
    api.rate(parent, [""] * 480, store=store, judge=scripted_judge, **SAMPLE)
    rm = api.reward(parent, store, out=tmp_path / "rm", max_steps=200, lr=1e-3, val_fraction=0.2, quiet=True)
    figures = json.loads((rm / "metrics.json").read_text())["preferences val"]
    assert figures["pairwise_accuracy"] >= 0.65 and figures["pairs"] >= 20, figures  # fixed seed: 0.73 of 30
    from genlab.align.reward import RewardScorer

    scores = RewardScorer(rm).score("", ["and the value is", "xq zv kk wp"])
    assert scores[0] > scores[1]
    assert "is a reward model" in user_error(capsys, "sample", rm)
    run = api.align(parent, method="best-of-n", reward=rm, n=6, num_prompts=48, sampling=SAMPLE,
                    out=tmp_path / "bon", max_steps=80, quiet=True)
    kept = sorted((run / "best-of-n").glob("*.txt"))
    base = rate_of_word(parent)
    assert len(kept) == 48 and sum(has_word(p.read_text()) for p in kept) / 48 > base  # its picks hold the word more
    objective = json.loads((run / "config.json").read_text())["train"]["objective"]
    assert objective["method"] == "best-of-n" and objective["kept_reward"] > objective["mean_reward"]
    assert (run / "model.safetensors").is_file()  # the rate after fine-tuning is measured by bench/align.py, not here
    capsys.readouterr()  # what the fine-tune printed
    lstm = api.train("text:pydocs", family="lstm", preset="tiny", max_steps=5, eval_interval=5, quiet=True,
                     out=str(tmp_path / "lstm"))
    assert "reward model on a gpt text backbone" in user_error(capsys, "align", lstm, "--method", "best-of-n",
                                                               "--reward", rm, "--out", tmp_path / "x")
    assert "is not a reward model" in user_error(capsys, "align", parent, "--method", "best-of-n", "--reward",
                                                 parent, "--out", tmp_path / "y")
