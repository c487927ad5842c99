"""Digit scenes (captions exactly true of their layouts, held-out splits, per-region checks) and captioned folders."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from genlab.errors import GenlabError
from genlab.images import scenes as S
from genlab.images.captions import MAX_CAPTION_CHARS, read_captioned_folder


@pytest.fixture(scope="module")
def built():
    return S.build_scenes(600, 200, seed=3)


@pytest.fixture(scope="module")
def classifier():
    return S.digit_classifier()


@st.composite
def layouts(draw):
    n = draw(st.sampled_from([2, 3]))
    digits = draw(st.permutations(range(10)))[:n]
    sizes = ("small",) * 3 if n == 3 else tuple(draw(st.sampled_from(["small", "large"])) for _ in range(2))
    return digits, draw(st.sampled_from(S.ARRANGEMENTS)), sizes, draw(st.booleans()), draw(st.integers(0, 2**31))


def alone(scene: S.Scene, k: int) -> np.ndarray:
    """Digit k of a scene rendered by itself, white on black."""
    return S.render(S.Scene(scene.digits[k:k + 1], scene.boxes[k:k + 1], scene.arrangement, False,
                            scene.scans[k:k + 1]))


def oracle(scene: S.Scene):
    """A perfect classifier for one scene's digits: it knows each digit's ink crop drawn alone."""
    known = {S.ink_crop(alone(scene, k)).tobytes(): d for k, d in enumerate(scene.digits)}
    return lambda crop: known.get(crop.tobytes(), -1)


@settings(max_examples=150, deadline=None)
@given(layouts())
def test_every_caption_parses_back_to_its_scene_and_the_scene_is_that_layout(layout):
    digits, arrangement, sizes, inverted, seed = layout
    scene = S.make_scene(digits, arrangement, sizes, inverted, seed=seed)
    texts = S.captions(scene)
    assert len(texts) >= 6 and len(set(texts)) == len(texts)
    for text in texts:
        assert S.parse_caption(text) == scene.spec, text
        assert len(text) <= MAX_CAPTION_CHARS
    # the layout is true of the pixels: boxes in reading order, of the said sizes, each in its region
    axis = 0 if arrangement == "row" else 1
    for (x0, y0, x1, y1), box, size in zip(S.regions(scene.spec), scene.boxes, sizes, strict=True):
        x, y, s = box
        assert s == S.SIZES[size] and x0 <= x and x + s <= x1 and y0 <= y and y + s <= y1
    starts = [b[axis] for b in scene.boxes]
    assert starts == sorted(starts)
    image = S.render(scene)
    ink = 255 - image if inverted else image
    inside = np.zeros_like(image, bool)
    for x, y, s in scene.boxes:
        inside[y:y + s, x:x + s] = True
    assert ink[~inside].max() == 0 and ink[inside].max() > 200  # all ink lies in the boxes
    assert S.layout_match(image, scene.spec, oracle(scene))


def test_build_is_deterministic_and_every_built_caption_is_exact(built):
    again = S.build_scenes(600, 200, seed=3)
    for name, split in built.splits.items():
        other = again.splits[name]
        assert np.array_equal(split.images, other.images) and split.captions == other.captions
        assert split.scenes == other.scenes and split.images.shape == (len(split), S.CANVAS, S.CANVAS)
        assert split.images.dtype == np.uint8
        for scene, texts in zip(split.scenes, split.captions, strict=True):
            assert all(S.parse_caption(t) == scene.spec for t in texts)
    assert not np.array_equal(S.build_scenes(50, 10, seed=4).train.images, built.train.images[:50])
    # each epoch serves the next phrasing: every one in turn, the same on every call
    split = built.train
    assert {split.caption(0, e) for e in range(len(split.captions[0]))} == set(split.captions[0])
    assert [split.caption(i, 5) for i in range(20)] == [split.caption(i, 5) for i in range(20)]
    assert len({split.caption(i, 0) for i in range(50)}) > 10  # scenes start at different phrasings


def test_splits_hold_out_scans_pairs_and_a_layout(built):
    cut = int(1797 * S.TRAIN_SCAN_SHARE)
    train_scans = {i for s in built.train.scenes for i in s.scans}
    val_scans = {i for sp in (built.val, built.val_unseen_pairs) for s in sp.scenes for i in s.scans}
    assert max(train_scans) < cut <= min(val_scans)
    assert len(S.UNSEEN_PAIRS) == 5 and sorted(d for p in S.UNSEEN_PAIRS for d in p) == list(range(10))
    assert not any(S.has_unseen_pair(s.digits) for s in built.train.scenes + built.val.scenes)
    assert all(S.has_unseen_pair(s.digits) for s in built.val_unseen_pairs.scenes)
    together = {tuple(sorted(p)) for s in built.val_unseen_pairs.scenes for p in itertools.combinations(s.digits, 2)}
    assert set(S.UNSEEN_PAIRS) <= together
    held = set(S.HELD_OUT_LAYOUTS)
    assert not any(s.spec.layout in held for s in built.train.scenes)
    assert not built.train.novel_layout.any()
    for split in (built.val, built.val_unseen_pairs):
        novel = np.array([s.spec.layout in held for s in split.scenes])
        assert np.array_equal(novel, split.novel_layout) and novel.mean() == 0.5
    layouts = {s.spec.layout for s in built.train.scenes}
    assert layouts == set(S.LAYOUTS) - held  # every other layout, two digits and three, is trained on
    inverted = np.mean([s.inverted for s in built.train.scenes])
    assert 0.15 < inverted < 0.35


def test_inversion_flips_the_canvas():
    scene = S.make_scene((3, 7), "column", ("small", "large"), seed=1)
    flipped = S.Scene(scene.digits, scene.boxes, scene.arrangement, True, scene.scans)
    assert np.array_equal(S.render(flipped), 255 - S.render(scene))
    assert S.render(flipped)[0, 0] == 255 and "white" in S.captions(flipped)[0]
    assert not S.parse_caption(S.captions(scene)[1]).inverted and S.parse_caption(S.captions(flipped)[1]).inverted


def test_layout_match_with_a_perfect_classifier():
    scene = S.make_scene((3, 7), "row", ("small", "large"), seed=2)
    image, spec, classify = S.render(scene), scene.spec, oracle(scene)
    assert S.layout_match(image, spec, classify)
    assert not S.layout_match(image, S.LayoutSpec((7, 3), "row", spec.sizes), classify)  # digits swapped
    assert not S.layout_match(image, S.LayoutSpec((3, 7), "row", ("large", "large")), classify)
    assert S.layout_match(image, S.LayoutSpec((3, 7), "row", (None, None)), classify)  # sizes unsaid
    assert not S.layout_match(image, S.LayoutSpec((3, 7), "column", spec.sizes), classify)
    assert not S.layout_match(255 - image, spec, classify)  # wrong background
    assert not S.layout_match(np.zeros_like(image), spec, classify)  # no ink where a digit should be


def test_classifier_reads_held_out_scans_and_scenes(built, classifier):
    assert classifier.accuracy >= 0.9
    for split in (built.val, built.val_unseen_pairs):
        hits = [S.layout_match(im, spec, classifier) for im, spec in zip(split.images, split.specs, strict=True)]
        assert np.mean(hits) >= 0.8  # real-digit scenes pass their own captions (2-3 digits each, unseen writers)


def test_parse_caption_reads_close_variants_and_refuses_what_it_cannot_place():
    assert S.parse_caption("A 3 to the left of a 7.") == S.LayoutSpec((3, 7), "row", (None, None))
    assert S.parse_caption("a big eight under a little two") == S.LayoutSpec((2, 8), "column", ("small", "large"))
    assert S.parse_caption("1, 2 and 3 from right to left, all large").digits == (3, 2, 1)
    for bad in ("a cat", "a 3 and a 7", "a 3 left of a 7 above a 5", "a 12 to the left of a 3",
                "a 3 to the left of a 7 to the left of a 3", "a small 3 to the left of a large 3",
                "a small 3 to the left of a 7, the 3 larger", "a 3 on the left of a 7 on the left"):
        with pytest.raises(GenlabError):
            S.parse_caption(bad)


def test_make_scene_refuses_layouts_that_do_not_fit():
    for digits, sizes in (((3, 3), None), ((1, 2, 3), ("large", "small", "small")), ((1,), None)):
        with pytest.raises(GenlabError):
            S.make_scene(digits, "row", sizes)


# ---------------------------------------------------------------------------------------------- captioned folders


def png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(path)


def test_txt_captions_beside_images_in_nested_folders(tmp_path):
    png(tmp_path / "cat.png")
    (tmp_path / "cat.txt").write_text("  a grey\ncat \n", encoding="utf-8")
    png(tmp_path / "sub" / "dog.jpg")
    (tmp_path / "sub" / "dog.txt").write_text("\ufeffa dog", encoding="utf-8")
    (tmp_path / "README.txt").write_text("not a caption")
    assert read_captioned_folder(tmp_path) == [(tmp_path / "cat.png", "a grey cat"),
                                               (tmp_path / "sub" / "dog.jpg", "a dog")]


def test_missing_empty_and_long_captions_are_named(tmp_path):
    png(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("an image")
    png(tmp_path / "b.png")
    png(tmp_path / "c.png")
    with pytest.raises(GenlabError, match=r"^b\.png \(and 1 more images\) has no caption.*--allow-uncaptioned"):
        read_captioned_folder(tmp_path)
    assert [c for _, c in read_captioned_folder(tmp_path, allow_uncaptioned=True)] == ["an image", "", ""]
    (tmp_path / "b.txt").write_text(" \n")
    with pytest.raises(GenlabError, match=r"^b\.txt: the caption is empty"):
        read_captioned_folder(tmp_path, allow_uncaptioned=True)
    (tmp_path / "b.txt").write_text("x" * (MAX_CAPTION_CHARS + 1))
    with pytest.raises(GenlabError, match=r"^b\.txt: the caption is 301 characters"):
        read_captioned_folder(tmp_path, allow_uncaptioned=True)
    png(tmp_path / "a.jpg")
    with pytest.raises(GenlabError, match="would share the caption a.txt"):
        read_captioned_folder(tmp_path, allow_uncaptioned=True)
    for p in tmp_path.iterdir():
        p.unlink()
    (tmp_path / "x.txt").write_text("text only")
    with pytest.raises(GenlabError, match="no PNG/JPEG images"):
        read_captioned_folder(tmp_path)
    with pytest.raises(GenlabError, match="does not exist"):
        read_captioned_folder(tmp_path / "nowhere")


def write_meta(folder, *lines):
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_metadata_jsonl_wins_over_txt_and_names_its_lines(tmp_path, capsys):
    png(tmp_path / "cat.png")
    png(tmp_path / "train" / "dog.png")
    (tmp_path / "cat.txt").write_text("ignored")
    write_meta(tmp_path, json.dumps({"file_name": "cat.png", "text": "a cat", "extra": 1}), "",
               json.dumps({"file_name": "train/dog.png", "text": "a dog"}))
    assert read_captioned_folder(tmp_path) == [(tmp_path / "cat.png", "a cat"), (tmp_path / "train" / "dog.png",
                                                                                  "a dog")]
    assert "metadata.jsonl gives the captions; 1 .txt file beside images is not read" in capsys.readouterr().err
    good = json.dumps({"file_name": "cat.png", "text": "a cat"})
    cases = {
        "metadata.jsonl line 2: not valid JSON": (good, "{oops"),
        "metadata.jsonl line 2: no 'text'": (good, json.dumps({"file_name": "train/dog.png"})),
        "metadata.jsonl line 1: no 'file_name' or 'text'": ("{}",),
        "metadata.jsonl line 2: missing.png does not exist": (good, json.dumps({"file_name": "missing.png",
                                                                              "text": "x"})),
        r"metadata.jsonl line 2: cat.png is listed again \(first on line 1\)": (good, good),
        r"metadata.jsonl line 1 \(cat.png\): the caption is empty": (json.dumps({"file_name": "cat.png", "text": ""}),),
        "metadata.jsonl line 1: file_name '../x.png' must be a path inside": (json.dumps({"file_name": "../x.png",
                                                                                        "text": "x"}),),
        r"^train/dog.png has no caption \(metadata.jsonl does not list it\)": (good,),
    }
    for message, lines in cases.items():
        write_meta(tmp_path, *lines)
        with pytest.raises(GenlabError, match=message):
            read_captioned_folder(tmp_path)
    write_meta(tmp_path, good)
    (tmp_path / "train" / "metadata.jsonl").write_text(good)
    with pytest.raises(GenlabError, match="reads one metadata.jsonl, at the folder's root"):
        read_captioned_folder(tmp_path)
