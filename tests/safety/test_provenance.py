"""Provenance in every file type genlab writes: one record (C2PA's names), sealed with the content's hash, read
back by `genlab inspect`, which tells an intact file from an altered one and from one that carries none."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import mido
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from genlab import api
from genlab.cli import main
from genlab.safety.provenance import AI_MEDIA, inspect_file
from tests.test_modalities import TUNE


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, small_corpus) -> dict[str, Path]:
    """One file of each type, written by the samplers of three tiny runs."""
    tmp = tmp_path_factory.mktemp("provenance")
    tiny = dict(max_steps=2, eval_interval=2, eval_batches=1, warmup_steps=0, seed=0, quiet=True)
    folder = tmp / "tunes"
    folder.mkdir()
    (folder / "tunes.abc").write_text("\n".join(TUNE.format(i=i) for i in range(12)))
    files = {}
    text = api.load(api.train(str(small_corpus), family="gpt", out=str(tmp / "text"), n_layer=1, n_head=2,
                              n_embd=32, block_size=32, **tiny))
    texts = text.generate(prompt="The ", max_new_tokens=20, seed=3, num_samples=1, watermark_key="k")
    files["txt"] = text.write(texts, tmp / "out")[0]
    music = api.load(api.train(str(folder), family="gpt", out=str(tmp / "music"), n_layer=1, n_head=2, n_embd=32,
                               block_size=32, **tiny))
    tunes = music.generate(prompt="M:6/8 K:Dmaj", max_new_tokens=40, seed=3, num_samples=4)
    for path in music.write(tunes, tmp / "out", renderer="additive"):
        files.setdefault(path.suffix[1:], path)
    images = api.load(api.train("images:digits", family="vae", out=str(tmp / "images"), image_size=8,
                                batch_size=32, **tiny))
    files["png"] = next(p for p in images.write(images.generate(num_samples=2, seed=3), tmp / "out")
                        if p.name.startswith("sample"))
    assert set(files) == {"txt", "abc", "mid", "wav", "png"}, files  # some tune converted to MIDI and WAV
    return files


def copy(path: Path, tmp_path: Path) -> Path:
    """The file (and a text's sidecar) in a folder of its own, to alter without touching the others."""
    out = tmp_path / path.name
    out.write_bytes(path.read_bytes())
    if path.suffix == ".txt":
        out.with_suffix(".json").write_bytes(path.with_suffix(".json").read_bytes())
    return out


@pytest.mark.parametrize("kind", ["txt", "abc", "mid", "wav", "png"])
def test_every_file_type_carries_one_sealed_record(outputs, kind):
    found = inspect_file(outputs[kind])
    r = found.record
    assert found.status == "intact", found.summary()
    assert r["schema"] == "genlab.provenance/1" and r["ai_generated"] is True and r["digitalSourceType"] == AI_MEDIA
    assert r["claim_generator"].startswith("genlab/") and r["claim_generator_info"][0]["name"] == "genlab"
    assert r["action"] == "c2pa.created" and r["when"].endswith("Z") and r["seed"] == 3
    assert len(r["checkpoint_sha256"]) == 64 and r["model"] in ("text", "music", "images")
    assert r["format"] == found.media_type and r["content_hash"]["alg"] == "sha256"
    assert isinstance(r["controls"], dict)
    if kind == "txt":  # the key's id, never the key
        assert r["watermark"]["scheme"] and "k" not in r["watermark"].values() and "watermark" not in r["controls"]
    assert "content: intact" in found.summary()


def alter(path: Path) -> None:
    """Change the content (not the provenance) the way an editor would."""
    if path.suffix == ".txt":
        path.write_text(path.read_text() + " (edited)")
    elif path.suffix == ".abc":
        lines = path.read_text().splitlines()
        body = next(i for i, line in enumerate(lines) if line.startswith("K:")) + 1
        lines[body] = lines[body] + " z"
        path.write_text("\n".join(lines) + "\n")
    elif path.suffix == ".mid":
        midi = mido.MidiFile(str(path))
        note = next(m for m in midi.tracks[1] if m.type == "note_on")
        note.note += 1
        midi.save(str(path))
    elif path.suffix == ".wav":
        data = bytearray(path.read_bytes())
        data[-2] ^= 0x10  # the data chunk comes last
        path.write_bytes(bytes(data))
    else:
        with Image.open(path) as im:
            im.load()
            info = PngInfo()
            for k, v in im.text.items():
                info.add_text(k, v)
            pixels = im.copy()
        pixels.putpixel((0, 0), 255 - pixels.getpixel((0, 0)))
        pixels.save(path, pnginfo=info)


@pytest.mark.parametrize("kind", ["txt", "abc", "mid", "wav", "png"])
def test_inspect_tells_an_altered_file(outputs, kind, tmp_path, capsys):
    path = copy(outputs[kind], tmp_path)
    assert main(["inspect", str(path)]) == 0 and "content: intact" in capsys.readouterr().out
    alter(path)
    found = inspect_file(path)
    assert found.status == "altered" and found.record["seed"] == 3  # the record still says what genlab made
    assert main(["inspect", str(path)]) == 1
    assert "ALTERED after genlab wrote it" in capsys.readouterr().out


def strip(path: Path) -> None:
    """Remove the provenance, as a re-save or a converter does."""
    if path.suffix == ".txt":
        path.with_suffix(".json").unlink()
    elif path.suffix == ".abc":
        path.write_text("".join(line for line in path.read_text().splitlines(True) if not line.startswith("%")))
    elif path.suffix == ".mid":
        midi = mido.MidiFile(str(path))
        midi.tracks[0] = mido.MidiTrack(m for m in midi.tracks[0] if m.type != "text")
        midi.save(str(path))
    elif path.suffix == ".wav":
        with wave.open(str(path)) as w:
            params, frames = w.getparams(), w.readframes(w.getnframes())
        with wave.open(str(path), "wb") as w:
            w.setparams(params)
            w.writeframes(frames)
    else:
        with Image.open(path) as im:
            im.load()
            im.copy().save(path)


@pytest.mark.parametrize("kind", ["txt", "abc", "mid", "wav", "png"])
def test_inspect_says_when_a_file_carries_none(outputs, kind, tmp_path, capsys):
    path = copy(outputs[kind], tmp_path)
    strip(path)
    assert inspect_file(path).status == "none"
    assert main(["inspect", str(path)]) == 1
    assert "carries no genlab provenance" in capsys.readouterr().out


def test_a_damaged_record_is_unreadable_not_trusted(outputs, tmp_path, capsys):
    path = copy(outputs["txt"], tmp_path)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(sidecar.read_text()[:-5])
    assert inspect_file(path).status == "unreadable"
    assert main(["inspect", str(path)]) == 1 and "cannot be read" in capsys.readouterr().out


def test_inspect_user_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "notes.docx").write_bytes(b"x")
    (tmp_path / "fake.mid").write_bytes(b"not midi")
    for name, words in [("notes.docx", "reads provenance from .png"), ("missing.png", "does not exist"),
                        ("fake.mid", "not a readable MIDI file")]:
        assert main(["inspect", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1


def test_the_api_response_carries_the_same_record(outputs, tmp_path):
    """What the HTTP API sends (the music wing's http_output) holds the files genlab writes, sealed alike."""
    m = api.load(outputs["abc"].parent.parent / "music")
    tune = m.generate(prompt="M:6/8 K:Dmaj", max_new_tokens=40, seed=5, num_samples=1)
    out = m.http_output(tune)
    (tmp_path / "t.abc").write_text(out["abc"])
    assert inspect_file(tmp_path / "t.abc").status == "intact"
    assert out["provenance"]["seed"] == 5 and "content_hash" not in out["provenance"]
    assert json.loads(json.dumps(out["provenance"])) == out["provenance"]
