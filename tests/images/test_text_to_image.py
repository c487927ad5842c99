"""Text-to-image: the caption tokenizer and encoder, cross-attention in the U-Net, prompt dropout, a tiny
captioned model that learns two captions, sampling with prompts (CLI, Python), and each error a user can meet."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.errors import GenlabError
from genlab.families import get_family
from genlab.families.text_encoder import CrossAttention
from genlab.images.captions import CaptionTokenizer
from genlab.images.data import open_images


def captioned_digits(folder, per_class: int = 90):
    """sklearn's 8x8 zeros and ones as PNGs, captioned "a zero" / "a one" (some "the digit zero") in a
    metadata.jsonl: two captions a model must tell apart."""
    from sklearn.datasets import load_digits

    d = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for digit, word in ((0, "zero"), (1, "one")):
        for k, i in enumerate(np.flatnonzero(d.target == digit)[:per_class]):
            name = f"{word}-{k:03d}.png"
            Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8)).save(folder / name)
            rows.append({"file_name": name, "text": f"a {word}" if k % 3 else f"the digit {word}"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def tiny_captioned(**kw):
    family = get_family("diffusion")
    config = family.make_config({"channels": 1, "image_size": 8, "captions": True, "caption_vocab_size": 12,
                                 "caption_length": 5, "width": 8, "time_dim": 32, "text_dim": 32,
                                 "text_layers": 1, **kw})
    torch.manual_seed(0)
    return family, family.build(config)


# ------------------------------------------------------------------------------------------- tokenizer


def test_caption_tokenizer_reads_words_lowercased_with_cls_first_and_refuses_unknown_words(tmp_path):
    tok = CaptionTokenizer.fit(["a small 3 to the left of a large 7", "seven on the right, three on the left"])
    ids = tok.encode(["A small 3", ""])
    assert ids.shape == (2, tok.max_length) and tok.max_length == 11  # the longest caption's 10 words + [CLS]
    assert ids[0, 0] == 1 and ids[1, 0] == 1 and (ids[1, 1:] == 0).all()  # [CLS]; the empty caption is [CLS] alone
    assert tok.words("A small 3") == ["a", "small", "3"] and (ids[0, 1:4] > 2).all() and (ids[0, 4:] == 0).all()
    tok.save(tmp_path)
    again = CaptionTokenizer.load(tmp_path, tok.max_length)
    texts = ["a small 3", "seven on the right"]
    assert torch.equal(again.encode(texts), tok.encode(texts))
    from transformers import PreTrainedTokenizerFast  # the file is a tokenizer.json that transformers reads

    hf = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "caption_tokenizer.json"))
    assert hf.convert_ids_to_tokens(hf("Seven on the left")["input_ids"]) == ["seven", "on", "the", "left"]
    with pytest.raises(GenlabError, match=r"never saw the word 'purple'"):
        tok.check_prompt("a purple 3")
    with pytest.raises(GenlabError, match=r"at most 10"):
        tok.check_prompt("a small 3 to the left of a large 7 on the left")


# ------------------------------------------------------------------------------------------- the network


def test_cross_attention_starts_as_the_identity_and_reads_the_caption_once_trained():
    torch.manual_seed(0)
    layer = CrossAttention(16, 8)
    x, words = torch.randn(2, 16, 4, 4), torch.tensor([[True, True, False], [True, True, False]])
    a, b = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    assert torch.equal(layer(x, a, words), x)  # zero-initialised output projection
    torch.nn.init.normal_(layer.proj.weight)
    assert not torch.allclose(layer(x, a, words), layer(x, b, words))  # a different caption, a different output
    c = b.clone()
    c[:, 2] = 100.0  # what lies under the padding is never read
    d = a.clone()
    d[:, :2] = b[:, :2]
    assert torch.allclose(layer(x, c, words), layer(x, d, words), atol=1e-6)


def test_the_unet_output_changes_with_the_prompt_and_the_unconditional_branch_ignores_it():
    family, model = tiny_captioned()
    for p in model.unet.parameters():  # as if trained: no zero-initialised layer left
        torch.nn.init.normal_(p, std=0.1)
    model.ema.restart(model.unet)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([500, 500])
    three, seven = torch.tensor([[1, 5, 6, 0, 0]] * 2), torch.tensor([[1, 7, 8, 9, 0]] * 2)
    with torch.no_grad():
        assert not torch.allclose(model(x, t, three), model(x, t, seven))
        noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
        unguided = [model.generate(noise, ids, steps=3, guidance=0.0) for ids in (three, seven)]
        guided = [model.generate(noise, ids, steps=3, guidance=3.0) for ids in (three, seven)]
    assert torch.equal(unguided[0], unguided[1])  # guidance 0 is the unconditional model: the prompt does nothing
    assert not torch.allclose(guided[0], guided[1])


def test_prompt_dropout_trains_the_empty_caption():
    family, model = tiny_captioned(label_dropout=0.999999)
    seen = []
    model.unet.register_forward_pre_hook(lambda mod, args: seen.append(args[2].clone()))
    ids = torch.tensor([[1, 5, 6, 0, 0], [1, 7, 0, 0, 0], [1, 8, 9, 10, 11]])
    family.loss(model, (torch.randn(3, 1, 8, 8), ids))
    empty = torch.tensor([[1, 0, 0, 0, 0]] * 3)
    assert torch.equal(seen[0], empty) and torch.equal(model.null_condition(3, "cpu"), empty)
    model.config.label_dropout = 0.0
    family.loss(model, (torch.randn(3, 1, 8, 8), ids))
    assert torch.equal(seen[1], ids)


# ------------------------------------------------------------------------------------------- data


def test_digit_scenes_serve_images_with_one_of_their_phrasings_each_draw():
    data = open_images("images:digit-scenes", captions=True)
    assert data.image_size == 32 and len(data.train) == 20_000 and len(data.val) == 1_000
    g = torch.Generator().manual_seed(0)
    x, ids = data.batch("train", 64, g)
    assert x.shape == (64, 1, 32, 32) and ids.shape == (64, data.caption_tokenizer.max_length)
    assert (ids[:, 0] == 1).all()
    settings = data.model_settings()
    assert settings["caption_length"] == data.caption_tokenizer.max_length
    # the same image drawn again is (mostly) read under another phrasing
    texts = {data.caption_tokenizer.tokenizer.decode(data._caption_ids[0][0][0, k].tolist()) for k in range(7)}
    assert len(texts) >= 5
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(data.batch("train", 8, g1)[1], data.batch("train", 8, g2)[1])  # exact resume


def test_captions_refused_where_they_would_be_false_or_absent(tmp_path):
    with pytest.raises(GenlabError, match="--augment flips"):
        open_images("images:digit-scenes", captions=True, augment="flip")
    with pytest.raises(GenlabError, match="has no captions"):
        open_images("images:digits", captions=True)
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "0.txt").write_text("dark")
    with pytest.raises(GenlabError, match=r"1\.png \(and 1 more images\) has no caption.*--allow-uncaptioned"):
        open_images(str(folder), captions=True)
    data = open_images(str(folder), captions=True, allow_uncaptioned=True)
    assert data.describe()["uncaptioned_images"] == 2


def test_families_without_captions_say_so():
    for name in ("vae", "gan"):
        family = get_family(name)
        config = family.make_config({"channels": 1, "image_size": 8, "captions": True, "caption_vocab_size": 9,
                                     "caption_length": 4})
        with pytest.raises(GenlabError, match=f"the {name} family does not read captions.*--family diffusion"):
            family.build(config)


# ------------------------------------------------------------------------------------------- a model that learns


@pytest.fixture(scope="module")
def two_captions(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("t2i")
    digits = captioned_digits(root / "data")
    run = root / "run"
    genlab.train(str(root / "data"), family="diffusion", captions=True, image_size=8, width=16, time_dim=64,
                 text_dim=32, text_layers=1, max_steps=600, batch_size=64, lr=3e-3, warmup_steps=50,
                 eval_interval=600, ema_decay=0.99, seed=0, out=str(run), quiet=True)
    return run, digits


def test_a_tiny_captioned_model_draws_what_each_caption_says(two_captions):
    from sklearn.linear_model import LogisticRegression

    run, digits = two_captions
    real = digits.images[digits.target <= 1].reshape(-1, 64) / 16
    clf = LogisticRegression(max_iter=2000).fit(real, digits.target[digits.target <= 1])
    m = genlab.load(run)
    assert m.captioned and m.prompt_choices is None
    for word, digit in (("zero", 0), ("one", 1)):
        images = m.generate(num_samples=40, seed=3, prompt=f"a {word}", guidance=3.0, output_type="pt")
        pixels = ((images[:, 0] + 1) / 2).reshape(40, -1).numpy()
        share = float((clf.predict(pixels) == digit).mean())
        assert share >= 0.85, (word, share)
    # a prompt per image, and the negative prompt in the provenance
    two = m.generate(num_samples=2, seed=1, prompt=["a one", "a zero"], negative_prompt="a one")
    assert [im.info["prompt"] for im in two] == ["a one", "a zero"]
    record = two[0].info["genlab"]
    assert record["prompt"] == "a one" and record["controls"]["negative_prompt"] == "a one"


def test_sampling_errors_of_a_captioned_model(two_captions):
    run, _ = two_captions
    m = genlab.load(run)
    with pytest.raises(GenlabError, match="the prompt is empty"):
        m.generate(num_samples=1)
    with pytest.raises(GenlabError, match="never saw the word 'seven'"):
        m.generate(num_samples=1, prompt="a seven")
    with pytest.raises(GenlabError, match="at most 3"):
        m.generate(num_samples=1, prompt="a one a one a one")
    with pytest.raises(GenlabError, match="instead of --label"):
        m.generate(num_samples=1, prompt="a one", label=1)
    with pytest.raises(GenlabError, match="2 prompts for 3 images"):
        m.generate(num_samples=3, prompt=["a one", "a zero"])


def test_prompted_sampling_from_the_command_line(two_captions, tmp_path):
    run, _ = two_captions
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "genlab", "sample", str(run), "--prompt", "a one", "--negative-prompt", "a zero",
           "--guidance", "3", "--steps", "10", "--num-samples", "4", "--seed", "2", "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    record = json.loads(Image.open(out / "sample-000.png").text["genlab"])
    assert record["controls"]["prompt"] == "a one" and record["controls"]["negative_prompt"] == "a zero"
    bad = subprocess.run(cmd[:6] + ["a purple one"], capture_output=True, text=True)
    assert bad.returncode != 0 and "never saw the word 'purple'" in bad.stderr and "Traceback" not in bad.stderr


def test_prompt_errors_of_models_without_captions(tmp_path, one_thread):
    run = tmp_path / "plain"
    genlab.train("images:digits", family="diffusion", image_size=8, width=8, time_dim=32, max_steps=2,
                 batch_size=8, eval_interval=2, out=str(run), quiet=True)
    m = genlab.load(run)
    with pytest.raises(GenlabError, match="trained without labels or captions, so it takes no prompt"):
        m.generate(num_samples=1, prompt="a 3")
    with pytest.raises(GenlabError, match="--negative-prompt is for a model trained with --captions"):
        m.generate(num_samples=1, negative_prompt="a 3")


def test_the_server_draws_a_caption_and_refuses_a_bad_one(two_captions):
    import base64
    import io

    import httpx2 as httpx

    from genlab.serve import create_app, load_models
    from tests.serve.conftest import Running

    run, _ = two_captions
    running = Running(create_app(load_models([run], names=["scenes"])))
    try:
        made = httpx.post(running.url + "/v1/images/generations", timeout=60, json={
            "model": "scenes", "prompt": "a one", "negative_prompt": "a zero", "n": 2, "steps": 5, "guidance": 3,
            "seed": 4})
        assert made.status_code == 200, made.text
        image = Image.open(io.BytesIO(base64.b64decode(made.json()["data"][0]["b64_json"])))
        record = json.loads(image.text["genlab"])
        assert record["prompt"] == "a one" and record["controls"]["negative_prompt"] == "a zero"
        for body, code, says in (({"prompt": "a purple one"}, 400, "never saw the word 'purple'"),
                                 ({"prompt": ""}, 400, "the prompt is empty"),
                                 ({"prompt": "a one " * 20_000}, 413, "the prompt is over 65536 characters")):
            bad = httpx.post(running.url + "/v1/images/generations", timeout=60, json={"model": "scenes", **body})
            assert bad.status_code == code and says in bad.json()["error"]["message"], bad.text
    finally:
        running.stop()


def test_a_captioned_run_fine_tunes_in_its_own_words(two_captions, tmp_path):
    run, _ = two_captions
    folder = tmp_path / "ones"
    captioned_digits(folder, per_class=20)
    child = genlab.finetune(run, str(folder), out=str(tmp_path / "child"), max_steps=3, eval_interval=3, quiet=True)
    parent_words = (run / "caption_tokenizer.json").read_text()
    assert (child / "caption_tokenizer.json").read_text() == parent_words  # the parent's vocabulary, kept
    m = genlab.load(child)
    assert m.captioned and len(m.generate(num_samples=2, seed=0, prompt="a one", steps=2)) == 2
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    rows[0]["text"] = "a purple zero"
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(GenlabError, match="never read .*'purple'.*keeps its parent's caption vocabulary"):
        genlab.finetune(run, str(folder), out=str(tmp_path / "child2"), max_steps=1, quiet=True)
