"""The green-list watermark: its hash against splitmix64's published outputs, green lists that depend on the key,
z near 0 on unwatermarked text across 20 keys and above 4 on watermarked text, and the key kept out of provenance."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import numpy as np
import pytest

from genlab import api
from genlab.safety.watermark import GreenList, _mix, score


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    run = api.train("text:pydocs", family="gpt", preset="tiny", out=str(tmp_path_factory.mktemp("wm") / "docs"),
                    max_steps=150, eval_interval=150, eval_batches=1, seed=0, quiet=True)
    return run, api.load(run)


def test_the_hash_is_splitmix64():
    with np.errstate(over="ignore"):
        state, out = np.uint64(1234567), []
        for _ in range(3):
            state = state + np.uint64(0x9E3779B97F4A7C15)
            out.append(int(_mix(np.array([state]))[0]))
    assert out == [6457827717110365317, 3203168211198807973, 9817491932198370423]  # Vigna's reference outputs


def test_green_lists_have_gamma_of_the_vocabulary_and_depend_on_the_key():
    a, b = GreenList("one", 1000, gamma=0.25), GreenList("two", 1000, gamma=0.25)
    assert all(a.green(p).sum() == 250 for p in range(20))
    assert not np.array_equal(a.green(3), b.green(3)) and not np.array_equal(a.green(3), a.green(4))
    assert np.array_equal(a.green(3), GreenList("one", 1000, gamma=0.25).green(3))  # the same on every call
    overlap = np.mean([(a.green(p) & b.green(p)).sum() / 250 for p in range(50)])
    assert 0.15 < overlap < 0.35  # two keys' lists share about gamma of their tokens, as chance would
    assert a.key_id != b.key_id and "one" not in a.key_id


def test_repeated_pairs_are_scored_once():
    mark = GreenList("k", 10, gamma=0.5)
    assert mark.green_count([1, 2, 1, 2, 1, 2, 1, 2])[1] == 2  # (1, 2) and (2, 1)


def test_unmarked_text_centres_on_zero_and_marked_text_is_found(docs):
    run, m = docs
    plain = m.generate(prompt="The ", max_new_tokens=200, seed=11, temperature=1.0)
    zs = [m.detect_watermark(plain, f"key-{k}").z for k in range(20)]
    assert abs(statistics.mean(zs)) < 2 and max(zs) < 4, zs  # the trap: across keys, not one
    marked = m.generate(prompt="The ", max_new_tokens=200, seed=11, temperature=1.0, watermark_key="key-3")
    found = m.detect_watermark(marked, "key-3")
    assert found.watermarked and found.z > 4, found
    assert not m.detect_watermark(marked, "key-4").watermarked  # another key sees nothing
    assert m.last_controls["watermark"]["key_id"] == GreenList("key-3", 10).key_id
    assert "key-3" not in json.dumps(m.last_controls)  # provenance names the key's id, never the key


def test_calibration_moves_the_chance_rate_to_the_keys_human_rate(docs):
    _, m = docs
    rates = [m.human_rate(m.watermark(f"key-{k}")) for k in range(10)]
    assert all(0.1 < r < 0.45 for r in rates) and len(set(rates)) > 1  # per key, around gamma, not equal to it
    mark = m.watermark("key-0")
    assert score([1, 2, 3], mark).scored == 2
    with pytest.raises(Exception, match="at least 201 tokens"):
        mark.calibrate([1, 2, 3])


def test_genlab_detect_from_the_command_line(docs, tmp_path):
    run, _ = docs

    def genlab(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True, input=stdin,
                              timeout=300)

    made = genlab("sample", str(run), "--prompt", "def ", "--max-new-tokens", "200", "--seed", "5",
                  "--watermark-key", "s3cret", "--gamma", "0.5", "-o", str(tmp_path))
    assert made.returncode == 0, made.stderr
    text_file = next(tmp_path.glob("*.txt"))
    assert json.loads(text_file.with_suffix(".json").read_text())["watermark"]["gamma"] == 0.5
    yes = genlab("detect", str(text_file), "--key", "s3cret", "--run", str(run))
    assert yes.returncode == 0 and yes.stdout.strip().endswith("watermarked: yes (threshold z = 4)"), yes
    assert "chance: 0.5" in yes.stdout  # gamma read from the provenance beside the file
    no = genlab("detect", "-", "--key", "other", "--run", str(run), stdin=text_file.read_text())
    assert "watermarked: no" in no.stdout
    bad = genlab("sample", str(run), "--watermark-key", "k", "--gamma", "1.5", "--max-new-tokens", "3")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "gamma" in bad.stderr


def test_abc_tunes_carry_the_watermark_through_the_same_token_loop(tmp_path):
    """A music model marks its tunes by the same logits processor; detection reads the .abc file it wrote,
    calibrated on the run's own training tunes."""
    from genlab.music.data import _music21_corpus_root

    folder = tmp_path / "tunes"  # 300 real folk tunes: a vocabulary whose pairs a few keys cannot all colour
    folder.mkdir()
    for name in ("boehme20.abc",):
        (folder / name).write_bytes((_music21_corpus_root() / "essenFolksong" / name).read_bytes())
    run = api.train(str(folder), family="gpt", out=str(tmp_path / "music"), n_layer=1, n_head=2, n_embd=32,
                    block_size=64, max_steps=40, eval_interval=40, eval_batches=1, seed=0, quiet=True)
    m = api.load(run)
    tune = dict(prompt="M:3/4", max_new_tokens=300, seed=2, temperature=1.2)
    plain = m.write(m.generate(**tune), tmp_path / "plain", formats=("abc",))[0].read_text()
    zs = [m.detect_watermark(plain, f"key-{k}").z for k in range(20)]
    assert abs(statistics.mean(zs)) < 2 and max(zs) < 4, zs
    path = m.write(m.generate(**tune, watermark_key="tune-key"), tmp_path / "marked", formats=("abc",))[0]
    found = m.detect_watermark(path.read_text(), "tune-key")
    assert found.watermarked, found.summary()
    assert not m.detect_watermark(path.read_text(), "another").watermarked
    assert "tune-key" not in path.read_text()  # the provenance comment names the key's id only
