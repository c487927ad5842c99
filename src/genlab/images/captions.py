"""Captioned image folders: each image with the text that describes it, for prompted generation.

Two conventions, both common in the wild:

    cat.png + cat.txt          a caption file beside each image, same stem (Stable Diffusion fine-tuning sets)
    metadata.jsonl             one JSON object a line, {"file_name": "cat.png", "text": "a cat"}, file names
                               relative to the folder (Hugging Face's imagefolder)

When the folder's root holds a metadata.jsonl, it gives every caption and .txt files are not read (with a
warning when there are some beside images): it is the explicit, single list, and mixing the two would make
a caption's origin a guess. Only the root's metadata.jsonl is read; one in a sub-folder is an error rather
than silently ignored. Sub-folders are walked as data.py walks an image folder (build, cache, VCS and hidden
folders left out): Stable Diffusion sets are flat, imagefolder ones may nest, and walking costs a flat
folder nothing.

A caption is one line: runs of whitespace (newlines included) become one space. An empty caption or one
over MAX_CAPTION_CHARS is an error naming its file (and line). An image without a caption is an error
naming it, unless allow_uncaptioned: then its caption is "" and it trains the unconditional share that
classifier-free guidance needs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path, PurePosixPath

from genlab.errors import GenlabError
from genlab.images.data import IMAGE_SUFFIXES
from genlab.text.data import folder_files

METADATA = "metadata.jsonl"
# about what a 77-token CLIP text encoder holds; a trainer that silently truncates longer captions teaches
# the model half of each, so they are refused instead
MAX_CAPTION_CHARS = 300


def check_caption(text: str, where: str) -> str:
    """A caption as one line, after checking it is neither empty nor too long; `where` names it in errors."""
    caption = " ".join(text.split())
    if not caption:
        raise GenlabError(f"{where}: the caption is empty; write one, or remove it and pass --allow-uncaptioned")
    if len(caption) > MAX_CAPTION_CHARS:
        raise GenlabError(f"{where}: the caption is {len(caption)} characters, over the {MAX_CAPTION_CHARS} "
                          "allowed; shorten it")
    return caption


def read_captioned_folder(path: str | Path, allow_uncaptioned: bool = False) -> list[tuple[Path, str]]:
    """(image path, caption) for every PNG/JPEG under `path`, sorted by path; "" for an image without a
    caption when allow_uncaptioned. Captions come from the root's metadata.jsonl when there is one,
    else from a same-stem .txt beside each image."""
    root = Path(path).expanduser()
    if not root.exists():
        raise GenlabError(f"{root} does not exist; give a folder of images with captions")
    if not root.is_dir():
        raise GenlabError(f"{root} is a file; give the folder that holds the images and their captions")
    files, _ = folder_files(root)
    nested = [f for f in files if f.name == METADATA and f.parent != root]
    if nested:
        raise GenlabError(f"{nested[0].relative_to(root)}: genlab reads one {METADATA}, at the folder's root, "
                          "with file names relative to it; merge it into the root's")
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    meta = root / METADATA
    if meta.is_file():
        listed = _read_metadata(meta, root)
        ignored = sum(1 for f in images if f.with_suffix(".txt").is_file())
        if ignored:
            print(f"genlab: warning: {METADATA} gives the captions; {ignored} .txt file"
                  f"{'s' if ignored > 1 else ''} beside images {'are' if ignored > 1 else 'is'} not read",
                  file=sys.stderr)
        captions: dict[Path, str | None] = {**{f: None for f in images}, **listed}
        why = f"{METADATA} does not list it"
    else:
        captions = {f: _read_txt(f, root) for f in _unique_stems(images, root)}
        why = "no .txt of the same name beside it"
    if not captions:
        raise GenlabError(f"{root} holds no PNG/JPEG images; give a folder of images with captions")
    missing = sorted(f for f, c in captions.items() if c is None)
    if missing and not allow_uncaptioned:
        more = f" (and {len(missing) - 1} more images)" if len(missing) > 1 else ""
        raise GenlabError(f"{missing[0].relative_to(root)}{more} has no caption ({why}); write one, or pass "
                          "--allow-uncaptioned to train on uncaptioned images unconditionally")
    if len(missing) == len(captions):
        raise GenlabError(f"none of the {len(captions)} images in {root} has a caption; add captions, or train on "
                          "it as a plain image folder")
    return [(f, captions[f] or "") for f in sorted(captions)]


def _unique_stems(images: list[Path], root: Path) -> list[Path]:
    """The images, once no two share a caption file (cat.png and cat.jpg would both read cat.txt)."""
    seen: dict[Path, Path] = {}
    for f in images:
        txt = f.with_suffix(".txt")
        if txt in seen:
            raise GenlabError(f"{seen[txt].relative_to(root)} and {f.relative_to(root)} would share the caption "
                              f"{txt.relative_to(root)}; rename one of them")
        seen[txt] = f
    return images


def _read_txt(image: Path, root: Path) -> str | None:
    txt = image.with_suffix(".txt")
    if not txt.is_file():
        return None
    where = str(txt.relative_to(root))
    try:
        return check_caption(txt.read_text(encoding="utf-8-sig"), where)
    except UnicodeDecodeError:
        raise GenlabError(f"{where} is not UTF-8 text; save the caption as UTF-8") from None


def _read_metadata(meta: Path, root: Path) -> dict[Path, str]:
    """{image: caption} of a metadata.jsonl; every mistake named by its line."""
    try:
        lines = meta.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise GenlabError(f"{meta} is not UTF-8 text; save it as UTF-8") from None
    out: dict[Path, str] = {}
    first_line: dict[Path, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{METADATA} line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise GenlabError(f"{where}: not valid JSON ({e.msg}); each line is one object such as "
                              '{"file_name": "cat.png", "text": "a cat"}') from None
        if not isinstance(row, dict):
            raise GenlabError(f"{where}: a JSON object is expected, got {type(row).__name__}; write "
                              '{"file_name": ..., "text": ...}')
        lacking = [k for k in ("file_name", "text") if k not in row]
        if lacking:
            raise GenlabError(f"{where}: no {' or '.join(repr(k) for k in lacking)}; each line needs "
                              '"file_name" (the image, relative to the folder) and "text" (its caption)')
        name, text = row["file_name"], row["text"]
        if not isinstance(name, str) or not isinstance(text, str):
            raise GenlabError(f"{where}: file_name and text must be strings")
        rel = PurePosixPath(name.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise GenlabError(f"{where}: file_name {name!r} must be a path inside the folder, relative to it")
        image = root.joinpath(*rel.parts)
        if not image.is_file():
            raise GenlabError(f"{where}: {name} does not exist in {root}; fix the name or remove the line")
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            raise GenlabError(f"{where}: {name} is not a PNG/JPEG image ({', '.join(IMAGE_SUFFIXES)})")
        if image in first_line:
            raise GenlabError(f"{where}: {name} is listed again (first on line {first_line[image]}); give each "
                              "image one line")
        first_line[image] = n
        out[image] = check_caption(text, f"{where} ({name})")
    return out


# ---------------------------------------------------------------------------------------------- tokenizing captions

CAPTION_TOKENIZER = "caption_tokenizer.json"  # in the run directory, beside model.safetensors
PAD, CLS, UNK = "[PAD]", "[CLS]", "[UNK]"  # ids 0, 1, 2
MAX_CAPTION_WORDS = 4096  # the vocabulary's cap: rarer words of a large captioned folder are read as [UNK]


class CaptionTokenizer:
    """Captions as word ids, for the caption encoder: lower-cased (NFKC first), cut into words, numbers and
    punctuation (`tokenizers`' WordLevel model and Whitespace pre-tokenizer, saved as a tokenizer.json that
    transformers' PreTrainedTokenizerFast reads). A word-level vocabulary because captions are short and their
    words few: the encoder then composes words ("a small 3 to the left of"), not letters into words, which a
    small encoder trained with the image model in minutes does far better. Every caption starts with [CLS], so
    the empty caption (classifier-free guidance's unconditional branch) is one token, never nothing to attend to.
    Training captions fit the vocabulary; a prompt with a word it never saw is refused by name (the model
    knows nothing of it), where a training caption's rare word past MAX_CAPTION_WORDS reads as [UNK]."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)  # [CLS] included: the encoder's positions
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def fit(cls, captions: list[str]) -> CaptionTokenizer:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=MAX_CAPTION_WORDS + 3, special_tokens=[PAD, CLS, UNK],
                                            show_progress=False)
        tok.train_from_iterator(captions, trainer=trainer)
        longest = max((len(e.ids) for e in tok.encode_batch(captions)), default=0)
        return cls(tok, longest + 1)

    def words(self, caption: str) -> list[str]:
        return self.tokenizer.encode(caption).tokens

    def unknown_words(self, caption: str) -> list[str]:
        """The words of `caption` outside the vocabulary, as the caption spells them."""
        enc = self.tokenizer.encode(caption)
        return [caption[a:b] for (a, b), t in zip(enc.offsets, enc.tokens, strict=True) if t == UNK]

    def check_prompt(self, prompt: str) -> None:
        """Refuse, in one line, a prompt the encoder cannot read as it was trained: too long, or with unknown words."""
        n = len(self.tokenizer.encode(prompt).ids) + 1
        if n > self.max_length:
            raise GenlabError(f"the prompt is {n - 1} words long and this model reads at most {self.max_length - 1} "
                              "(its longest training caption); shorten it")
        unknown = self.unknown_words(prompt)
        if unknown:
            known = ", ".join(sorted(self.tokenizer.get_vocab(), key=self.tokenizer.token_to_id)[3:15])
            words = ", ".join(repr(w) for w in dict.fromkeys(unknown))
            raise GenlabError(f"the model never saw the word{'s' if len(unknown) > 1 else ''} {words} in a caption, "
                              f"so the prompt cannot say what it means; use the words of its captions "
                              f"({self.vocab_size - 3} words: {known}, ...)")

    def check_training_captions(self, captions: list[str], source: str) -> None:
        """Refuse, in one line, fine-tuning captions the parent's encoder cannot read: unknown words, or longer
        than its longest training caption (its positions)."""
        unknown = list(dict.fromkeys(w for c in captions for w in self.unknown_words(c)))
        if unknown:
            raise GenlabError(f"the captions of {source} use {len(unknown)} word(s) the model never read "
                              f"({', '.join(map(repr, unknown[:6]))}); a fine-tune keeps its parent's caption "
                              "vocabulary, so caption the images in its words or train a new model with --captions")
        longest = max((len(e.ids) for e in self.tokenizer.encode_batch(captions)), default=0)
        if longest + 1 > self.max_length:
            raise GenlabError(f"a caption of {source} is {longest} words long and the model reads at most "
                              f"{self.max_length - 1}; shorten it or train a new model with --captions")

    def encode(self, captions: list[str]):
        """(N, max_length) int64 ids: [CLS], the words, then [PAD]; a caption longer than max_length is cut."""
        import torch

        ids = torch.zeros(len(captions), self.max_length, dtype=torch.long)
        for i, enc in enumerate(self.tokenizer.encode_batch(captions)):
            row = [1, *enc.ids][: self.max_length]
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids

    def save(self, run_dir: Path) -> None:
        """The vocabulary as tokenizer.json's format; max_length lives in config.json (the model's caption_length)."""
        from genlab.io import atomic_write_text

        atomic_write_text(run_dir / CAPTION_TOKENIZER, self.tokenizer.to_str())

    @classmethod
    def load(cls, run_dir: Path, max_length: int) -> CaptionTokenizer:
        from genlab.text.tokenizer import read_hf_tokenizer

        return cls(read_hf_tokenizer(run_dir / CAPTION_TOKENIZER), max_length)


def image_caption(path: Path) -> str:
    """The caption of one image: the prompt genlab drew it from (its PNG's provenance record), else the .txt
    beside it (the captioned-folder convention)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            record = getattr(im, "text", {}).get("genlab")
    except (OSError, UnidentifiedImageError):
        raise GenlabError(f"{path} is not an image Pillow can read; give a PNG or JPEG") from None
    if record:
        try:
            said = json.loads(record)
            prompt = said.get("prompt") or said.get("controls", {}).get("prompt")  # one image's, or all's
        except (json.JSONDecodeError, AttributeError):
            prompt = None
        if isinstance(prompt, str) and prompt.strip():
            return prompt.strip()
    beside = path.with_suffix(".txt")
    if beside.is_file():
        text = beside.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text
    raise GenlabError(f"{path} has no caption: genlab reads the prompt a captioned model drew it from (kept in the "
                      f"PNG it wrote) or a .txt beside it ({beside.name}); write one")
