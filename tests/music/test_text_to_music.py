"""Text-to-music: tunes read after a description of their own header (--descriptions), a tiny model that learns to
write the key and meter a description names, the errors a user can meet, and one modality prompting another
(genlab describe, --prompt-from) end to end on tiny models."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.errors import GenlabError
from genlab.music.constraints import AbcMeterConstraint
from genlab.music.data import DESCRIPTION_DROPOUT, IGNORE, open_music, prepare_music
from genlab.music.describe import (
    description_words,
    meter_from_digits,
    parse_description,
    training_description,
)

# two kinds of tune a model must tell apart by their description: jigs in G (6/8) and reels in D (4/4)
KINDS = {"jig": ("6/8", "G", "GABcdefg", 6), "reel": ("4/4", "D", "DEFGABcd", 8)}


def tune_folder(folder, per_kind: int = 60):
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, (meter, key, scale, per_bar) in KINDS.items():
        text = []
        for i in range(per_kind):
            bars = " | ".join("".join(rng.choice(scale) for _ in range(per_bar)) for _ in range(8))
            text.append(f"X:{i + 1}\nT:{kind} {i}\nR:{kind}\nM:{meter}\nL:1/8\nK:{key}\n{bars} |]\n")
        (folder / f"{kind}s.abc").write_text("\n".join(text))
    return folder


# ------------------------------------------------------------------------------------------- descriptions


def test_description_words_keep_keys_capital_and_read_the_leading_article_as_one():
    assert description_words("A jig in G major") == ["a", "jig", "in", "G", "major"]
    assert description_words("a reel in D major, 4/4") == ["a", "reel", "in", "D", "major", ",", "4/4"]
    assert description_words("an F# minor hornpipe") == ["an", "F#", "minor", "hornpipe"]
    assert description_words("a tune in A minor") == ["a", "tune", "in", "A", "minor"]


def test_training_descriptions_state_only_the_tunes_facts():
    tune = "X:1\nT:The Kesh\nR:jig\nM:6/8\nL:1/8\nK:G\nGAB cde|\n"
    rng = random.Random(0)
    for _ in range(20):
        text = training_description(tune, rng)
        said = parse_description(text)
        assert said["key"] == "G" and said["mode"] in ("major", None)
        assert said["meter"] in ("6/8", None) and (said["meter"] or said["implied_meter"]) == "6/8"
        assert "Kesh" not in text  # the title's open-ended words are not read
    assert training_description("X:1\nT:Untitled\n", rng) is None  # a header with nothing to describe


def test_meter_from_digits():
    assert meter_from_digits([3, 4]) == "3/4" and meter_from_digits([8, 6]) == "6/8"
    assert meter_from_digits([7, 5]) is None and meter_from_digits([0, 4]) is None  # no note value; no 0 beats
    assert meter_from_digits([9, 1, 8]) == "9/8"


def test_a_described_corpus_reads_the_description_after_s_and_never_scores_it(tmp_path):
    corpus = prepare_music(str(tune_folder(tmp_path / "tunes")), tokenizer="abc", descriptions=True, quiet=True)
    tok = corpus.tokenizer
    assert tok.described and tok.vocab.index("desc:jig") >= 0
    described = 0
    for i in range(corpus.n_tunes):
        tokens = tok.tokens(corpus.tune(i))
        words = [t for t in tokens if t.startswith("desc:")]
        if words:
            described += 1
            first = tokens.index(words[0])
            assert first == 1 and tokens[first + len(words)].startswith("M:")  # <s> words M: K: ...
            said = parse_description(" ".join(w[5:] for w in words).replace(" ,", ","))
            meter, key = tokens[first + len(words)], tokens[first + len(words) + 1]
            assert key == f"K:{said['key']}maj"  # every phrasing names the key, and it is the tune's
            assert said["meter"] in (None, meter[2:]) and (said["rhythm"] is None or said["implied_meter"] == meter[2:])
    share = described / corpus.n_tunes
    assert abs(share - (1 - DESCRIPTION_DROPOUT)) < 0.1  # the rest train the undescribed tune
    data = open_music(str(tmp_path / "tunes"), block_size=64, tokenizer="abc", descriptions=True)
    x, y, _ = data.batch("train", 16, torch.Generator().manual_seed(0))
    is_word = torch.from_numpy(tok.description_mask)
    assert is_word[x].any() and (y == IGNORE).any()
    assert not is_word[y[y != IGNORE]].any()  # read, never a target
    assert torch.equal(y[:, :-1] == IGNORE, is_word[x[:, 1:]])  # exactly the words' positions are skipped


def test_descriptions_are_for_abc_tunes(tmp_path):
    with pytest.raises(GenlabError, match="--descriptions describes ABC tunes"):
        genlab.train("text:pydocs", descriptions=True, max_steps=1, out=str(tmp_path / "r"), quiet=True)
    with pytest.raises(GenlabError, match="read as MIDI/MusicXML events"):
        prepare_music("music:bach", descriptions=True, quiet=True)


def test_the_constraint_reads_a_description_but_never_draws_one(tmp_path):
    corpus = prepare_music(str(tune_folder(tmp_path / "tunes")), tokenizer="abc", descriptions=True, quiet=True)
    tok = corpus.tokenizer
    c = AbcMeterConstraint(tok)
    state = c.initial()
    for t in ["<s>", "desc:a", "desc:jig", "desc:in", "desc:G"]:
        state = c.step(state, tok.index[t])
        assert state is not None
    allowed = c.mask(state)
    assert not allowed[torch.from_numpy(tok.description_mask)].any()
    assert allowed[tok.index["M:6/8"]]


# ------------------------------------------------------------------------------------------- a model that learns


@pytest.fixture(scope="module")
def described(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("t2m")
    folder = tune_folder(root / "tunes")
    run = root / "run"
    genlab.train(str(folder), tokenizer="abc", descriptions=True, n_layer=2, n_embd=64, n_head=4, block_size=128,
                 max_steps=500, batch_size=16, lr=3e-3, eval_interval=500, seed=0, out=str(run), quiet=True)
    return run, root


def test_a_tiny_described_model_writes_the_key_and_meter_its_prompt_names(described):
    run, _ = described
    m = genlab.load(run)
    for prompt, (meter, key) in (("a jig in G major", ("M:6/8", "K:Gmaj")), ("a reel in D major", ("M:4/4", "K:Dmaj"))):
        tunes = m.generate(prompt, num_samples=10, seed=1, temperature=1.0)
        n = 1 + len(prompt.split())  # <s> and the description's words, then what the model wrote
        assert all(t.tokens[1:n] == [f"desc:{w}" for w in prompt.split()] for t in tunes)
        agree = np.mean([t.tokens[n:n + 2] == [meter, key] for t in tunes])
        assert agree >= 0.8, (prompt, agree, [t.tokens[n:n + 2] for t in tunes])
        assert all(not tok.startswith("desc:") for t in tunes for tok in t.tokens[n:])  # words only in the prompt
        abc = m.abc(tunes[0], m.provenance(tunes[0]))
        assert "desc:" not in abc and f"{meter}\n" in abc
        assert json.loads(abc.split("AI-generated by genlab: ", 1)[1].split("\n")[0])["controls"]["prompt"] == prompt


def test_description_prompt_errors(described):
    run, root = described
    m = genlab.load(run)
    with pytest.raises(GenlabError, match="never read the word.*'lively'"):
        m.generate("a lively jig in G major")
    tunes = m.generate("M:6/8 K:G", num_samples=2, seed=0)  # an ABC header still works
    assert all(t.tokens[1:3] == ["M:6/8", "K:Gmaj"] for t in tunes)
    with pytest.raises(GenlabError, match="context is 128; shorten it"):
        m.generate(", ".join(["a jig in G major"] * 30))
    plain = genlab.train(str(root / "tunes"), tokenizer="abc", n_layer=1, n_embd=16, n_head=2, block_size=64,
                         max_steps=2, batch_size=4, eval_interval=2, out=str(root / "plain"), quiet=True)
    with pytest.raises(GenlabError, match="trained without --descriptions, so it reads a prompt as ABC"):
        genlab.load(plain).generate("a jig in G major")


# ------------------------------------------------------------------------------------------- one modality, another


def test_describe_a_tune_and_a_captioned_image_and_refuse_other_kinds(tmp_path):
    tune = tmp_path / "kesh.abc"
    tune.write_text("X:1\nT:The Kesh\nR:jig\nM:6/8\nL:1/8\nK:G\nGAG GAB|ABA ABd|edd gdd|edB dBA|\n")
    d = genlab.describe(tune)
    assert d.modality == "music" and d.text.startswith("a jig in G major, in 6/8") and 'called "The Kesh"' in d.text
    image = tmp_path / "scene.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    with pytest.raises(GenlabError, match="has no caption"):
        genlab.describe(image)
    image.with_suffix(".txt").write_text("a small 3 to the left of a large 4, on a white background")
    d = genlab.describe(image)
    assert d.modality == "images" and d.facts["digits"] == [3, 4] and d.facts["inverted"]
    with pytest.raises(GenlabError, match="cannot describe a .cfg file"):
        (tmp_path / "x.cfg").write_text("x")
        genlab.describe(tmp_path / "x.cfg")
    done = subprocess.run([sys.executable, "-m", "genlab", "describe", str(tune), "--json"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["facts"]["meter"] == "6/8"
    bad = subprocess.run([sys.executable, "-m", "genlab", "describe", str(tmp_path / "x.cfg")], capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "cannot describe" in bad.stderr and "Traceback" not in bad.stderr


def test_a_tune_prompts_a_digit_scene_and_a_scene_prompts_a_tune(described, tmp_path):
    from genlab.modalities import Description, get_modality
    from genlab.music.describe import TuneFacts

    tune = Description("t.abc", "music", "a jig in G major, in 6/8", {"meter": "6/8", "mode": "major", "key": "G"})
    into_image = get_modality("images").prompt_from(tune, None)
    assert into_image.prompt == "a small 6 to the left of a small 8, on a black background"
    assert "its key, tune type" in into_image.dropped
    minor = Description("t.abc", "music", "a reel in E minor, in 4/4, spanning D4 to B5",
                        TuneFacts(key="E", mode="minor", meter="4/4").to_dict())
    assert get_modality("images").prompt_from(minor, None).prompt == \
        "a small 4 to the left of a small 5, on a white background"

    run, _ = described
    image = tmp_path / "scene.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    image.with_suffix(".txt").write_text("an 8 to the right of a 6, the 6 larger")
    out = tmp_path / "tunes"
    done = subprocess.run([sys.executable, "-m", "genlab", "sample", str(run), "--prompt-from", str(image),
                           "--num-samples", "3", "--seed", "1", "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "a tune in 6/8 in G major" in done.stderr and "carried over" in done.stderr
    written = sorted(out.glob("*.abc"))
    assert len(written) == 3 and all("M:6/8" in f.read_text() for f in written)

    image.with_suffix(".txt").write_text("a 7 above a 5")
    bad = subprocess.run([sys.executable, "-m", "genlab", "sample", str(run), "--prompt-from", str(image)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "spell no meter" in bad.stderr and "Traceback" not in bad.stderr
    unknown = subprocess.run([sys.executable, "-m", "genlab", "sample", str(run), "--prompt-from",
                              str(tmp_path / "song.ogg")], capture_output=True, text=True)
    assert unknown.returncode != 0 and "cannot describe a .ogg file" in unknown.stderr


def test_a_tune_prompts_a_tiny_scene_model_from_the_command_line(tmp_path, one_thread):
    run = genlab.train("images:digit-scenes", family="diffusion", captions=True, width=8, time_dim=32, text_dim=32,
                       text_layers=1, max_steps=2, batch_size=8, eval_interval=2, eval_batches=1,
                       out=str(tmp_path / "scenes"), quiet=True)
    tune = tmp_path / "air.abc"
    tune.write_text("X:1\nT:An Air\nR:air\nM:3/4\nL:1/8\nK:Em\nE2 G2 B2|e4 d2|B2 A2 G2|E6|]\n")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "genlab", "sample", str(run), "--prompt-from", str(tune),
                           "--num-samples", "2", "--steps", "2", "--seed", "0", "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    want = "a small 3 to the left of a small 4, on a white background"  # 3/4; E minor: black on white
    assert repr(want) in done.stderr and "not carried: its key, tune type" in done.stderr
    record = json.loads(Image.open(out / "sample-000.png").text["genlab"])
    assert want in (record.get("prompt"), record["controls"].get("prompt"))
    assert genlab.describe(out / "sample-000.png").facts["digits"] == [3, 4]  # and back: the PNG keeps its caption
