"""text:pyhelp — question-answer pairs about Python, built from the standard library's own documentation.

No download: every subject is something this interpreter documents. A subject is a public standard-library
module, a class or function it defines, a method of such a class (defined on the class itself), or one of the
language topics of `pydoc_data.topics` ("the with statement"). Each subject gets a few phrasings of one
question ("What does json.dumps do?", "How do I use json.dumps?", ...) and one answer: the signature line,
then the docstring's first paragraph, cut at a sentence boundary.

The split is by subject, so that evaluation can tell memorised answers from generalisation:

    val_unseen   about 10% of subjects, held out whole (every phrasing)
    val_seen     of the other subjects, one phrasing each: the subject is known, the question's wording is new
    train        the rest

Both choices are sha256 of the subject (`split_of`), never Python's randomised hash, so they are the same on
every run and machine. The same subject is never in train and val_unseen.

What counts as public: the top-level names of `sys.stdlib_module_names` and their public submodules (walked
with pkgutil), found in the standard library's own folder (never a copy on sys.path or a shim such as
setuptools' distutils). Left out (SKIP_MODULES): private `_x` modules, test packages, modules that print,
open a browser or are GUI demos on import (this, antigravity, __hello__, turtle, turtledemo, idlelib),
readline (its C library may write to the terminal on import), the deprecated modules PEP 594 and 632 remove,
platform twins (posixpath, ntpath and genericpath are asked about as os.path; posix as os), and the codec
modules of encodings. A module's public names are its `__all__`, else those without a leading underscore;
a name that is not in `__all__` must be defined in that module (its `__module__` is the module, the module's
C accelerator `_x`, or a submodule of its package). An object reachable from several modules is asked about
once, under its home (`_home_rank`). Documented means a docstring of its own: not None, not inherited or
copied from a base class, not a generated one (a dataclass's or a namedtuple's bare `Name(fields)`). A class
gives at most MAX_METHODS methods, chosen by sha256 of their names rather than the first in sorted order
(four classes have more: tkinter.Misc, tkinter.Wm, decimal.Context, pdb.Pdb). Modules are not capped:
builtins (with str, dict, list and their methods) is the largest and the most asked about.

Importing some 400 modules takes seconds and has side effects (tkinter, multiprocessing, asyncio loaded for
good), so the pairs are built once in a fresh interpreter (`python -m genlab.text.pyhelp OUT`, PYTHONHASHSEED=0
so that reprs of set defaults are stable) and cached as JSON under cache_root()/pyhelp, keyed by the Python
version, the platform and BUILD_VERSION.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import io
import json
import os
import pkgutil
import re
import subprocess
import sys
import sysconfig
import textwrap
import warnings
from collections import Counter
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from types import ModuleType

from genlab.errors import GenlabError

BUILD_VERSION = 1  # bump when subjects, phrasings, answers or the split change: the cache is keyed by it
SPLITS = ("train", "val_seen", "val_unseen")
KINDS = ("module", "class", "function", "method", "topic")
UNSEEN_FRACTION = 0.10
MAX_ANSWER = 600  # characters of description after the signature line, cut at a sentence boundary
MAX_SIGNATURE = 240  # a longer signature loses its annotations, then its tail
MAX_METHODS = 60  # per class: tkinter.Misc alone has 138, pdb.Pdb 69 (its commands)

SKIP_MODULES = frozenset({
    # print, open a browser or a window, or are demos and tools rather than a library
    "this", "antigravity", "__hello__", "__phello__", "turtle", "turtledemo", "idlelib", "pydoc_data",
    "readline", "rlcompleter",
    # deprecated: removed by PEP 594 (3.13) and PEP 632 (distutils, 3.12), or deprecated aliases
    "aifc", "asynchat", "asyncore", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib",
    "nis", "nntplib", "ossaudiodev", "pipes", "smtpd", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib",
    "distutils", "imp", "lib2to3", "sre_compile", "sre_constants", "sre_parse", "tkinter.tix",
    "xml.etree.cElementTree",
    # platform twins, asked about under their public names (os.path, os)
    "posixpath", "ntpath", "genericpath", "posix", "nt", "nturl2path",
    # macOS and Windows internals of ctypes
    "ctypes.macholib", "ctypes.wintypes",
})
SKIP_PARTS = frozenset({"test", "tests", "idle_test"})  # a test package anywhere in a dotted name
NO_SUBMODULES = frozenset({"encodings"})  # one module per codec, each the same Codec classes
EXTRA_MODULES = ("os.path",)  # not in sys.stdlib_module_names: posixpath or ntpath, asked about as os.path

PHRASINGS: dict[str, tuple[str, ...]] = {
    "module": ("What is the {s} module for?", "What does the {s} module do?", "Explain the {s} module.",
               "How do I use the {s} module?"),
    "class": ("What is {s}?", "What is the {s} class for?", "How do I use {s}?", "Explain {s}."),
    "function": ("What does {s} do?", "How do I use {s}?", "Explain {s}.", "What is {s} for?"),
    "method": ("What does {s} do?", "How do I use {s}?", "Explain {s}.", "What is {s} for?"),
    "topic": ("What {is} {s}?", "Explain {s}.", "How {does} {s} work in Python?", "Tell me about {s}."),
}

# pydoc_data.topics key -> (readable name, plural); a key missing here (a later Python) reads its title
TOPIC_NAMES: dict[str, tuple[str, bool]] = {
    "assert": ("the assert statement", False), "assignment": ("assignment statements", True),
    "async": ("coroutines", True), "atom-identifiers": ("identifiers (names)", True),
    "atom-literals": ("literals", True), "attribute-access": ("customizing attribute access", False),
    "attribute-references": ("attribute references", True), "augassign": ("augmented assignment", False),
    "await": ("the await expression", False), "binary": ("binary arithmetic operations", True),
    "bitwise": ("binary bitwise operations", True), "bltin-code-objects": ("code objects", True),
    "bltin-ellipsis-object": ("the Ellipsis object", False), "bltin-null-object": ("the None object", False),
    "bltin-type-objects": ("type objects", True), "booleans": ("boolean operations", True),
    "break": ("the break statement", False), "callable-types": ("emulating callable objects", False),
    "calls": ("calls", True), "class": ("class definitions", True), "comparisons": ("comparisons", True),
    "compound": ("compound statements", True), "context-managers": ("with statement context managers", True),
    "continue": ("the continue statement", False), "conversions": ("arithmetic conversions", True),
    "customization": ("basic customization", False), "debugger": ("the pdb debugger", False),
    "del": ("the del statement", False), "dict": ("dictionary displays", True),
    "dynamic-features": ("interaction with dynamic features", False), "else": ("if, elif and else", True),
    "exceptions": ("exceptions", True), "execmodel": ("the execution model", False),
    "exprlists": ("expression lists", True), "floating": ("floating point literals", True),
    "for": ("the for statement", False), "formatstrings": ("the format string syntax", False),
    "function": ("function definitions", True), "global": ("the global statement", False),
    "id-classes": ("reserved classes of identifiers", True), "identifiers": ("identifiers and keywords", True),
    "if": ("the if statement", False), "imaginary": ("imaginary literals", True),
    "import": ("the import statement", False), "in": ("membership test operations", True),
    "integers": ("integer literals", True), "lambda": ("lambdas", True), "lists": ("list displays", True),
    "naming": ("naming and binding", False), "nonlocal": ("the nonlocal statement", False),
    "numbers": ("numeric literals", True), "numeric-types": ("emulating numeric types", False),
    "objects": ("objects, values and types", True), "operator-summary": ("operator precedence", False),
    "pass": ("the pass statement", False), "power": ("the power operator", False),
    "raise": ("the raise statement", False), "return": ("the return statement", False),
    "sequence-types": ("emulating container types", False), "shifting": ("shifting operations", True),
    "slicings": ("slicings", True), "specialattrs": ("special attributes", True),
    "specialnames": ("special method names", True), "string-methods": ("string methods", True),
    "strings": ("string and bytes literals", True), "subscriptions": ("subscriptions", True),
    "truth": ("truth value testing", False), "try": ("the try statement", False),
    "types": ("the standard type hierarchy", False), "typesfunctions": ("function objects", True),
    "typesmapping": ("mapping types (dict)", True), "typesmethods": ("method objects", True),
    "typesmodules": ("module objects", True), "typesseq": ("sequence types (list, tuple, range)", True),
    "typesseq-mutable": ("mutable sequence types", True), "unary": ("unary arithmetic and bitwise operations", True),
    "while": ("the while statement", False), "with": ("the with statement", False),
    "yield": ("the yield statement", False),
}


@dataclass(frozen=True)
class QA:
    """One question and its answer. `phrasing` indexes PHRASINGS[kind]."""

    subject: str  # "json.dumps", "str.split", "topic:with"
    kind: str  # one of KINDS
    question: str
    answer: str
    phrasing: int
    split: str  # one of SPLITS


# ---------------------------------------------------------------------------------------------------
# The split: a pure function of the subject
# ---------------------------------------------------------------------------------------------------


def _digest(subject: str) -> bytes:
    return hashlib.sha256(f"genlab/pyhelp/{subject}".encode()).digest()


def is_unseen(subject: str) -> bool:
    """Whether a subject is held out whole (val_unseen): the first 8 bytes of its sha256 as a fraction."""
    return int.from_bytes(_digest(subject)[:8], "big") < UNSEEN_FRACTION * 2**64


def split_of(subject: str, phrasing: int, n_phrasings: int) -> str:
    """The split of one phrasing of a subject; the same on every run, machine and Python."""
    if is_unseen(subject):
        return "val_unseen"
    held_out = int.from_bytes(_digest(subject)[8:16], "big") % n_phrasings
    return "val_seen" if phrasing == held_out else "train"


# ---------------------------------------------------------------------------------------------------
# Text: docstrings and topics cut into plain answers
# ---------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # reprs like <object object at 0x7f..>: other on every run
_UNDERLINE = re.compile(r"^\s*([*=\-~^#\"'`+])\1{2,}\s*$")


def plain(text: str) -> str:
    """Text with tabs expanded and every control character but newline removed."""
    return _CONTROL.sub("", text.expandtabs(4).replace("\r\n", "\n").replace("\r", "\n"))


def cut(text: str, limit: int = MAX_ANSWER) -> str:
    """`text` if it fits, else cut after its last sentence that does; mid-sentence with "..." only when the
    first sentence alone is too long."""
    if len(text) <= limit:
        return text
    head = text[:limit + 1]
    ends = [m.end(1) for m in re.finditer(r"([.!?][)\"']?)\s", head)
            if not head[:m.end(1)].endswith(("e.g.", "i.e.", "etc.", "vs."))]
    if ends and ends[-1] >= limit // 3:
        return text[:ends[-1]]
    space = text.rfind(" ", 0, limit - 3)
    return text[:space if space > 0 else limit - 3].rstrip(" ,;:") + "..."


def _paragraphs(text: str) -> list[list[str]]:
    paras, cur = [], []
    for line in text.split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def _drop_last_sentence(text: str) -> str:
    ends = [m.end(1) for m in re.finditer(r"([.!?][)\"']?)\s", text)]
    return text[:ends[-1]] if ends else ""


def _is_block(para: list[str]) -> bool:
    return para[0][:1].isspace() or para[0].startswith(">>>")


def summary(text: str, limit: int = MAX_ANSWER, min_chars: int = 0, examples: bool = True) -> str:
    """The first prose paragraph of `text` reflowed onto one line, and those after it while the answer is under
    `min_chars` and fits `limit`, cut at a sentence. A paragraph that announces the next ("Returns one of:")
    shows it as it is when `examples` asks and it fits; indented blocks (examples, grammar) are otherwise left
    out, and so is a sentence that announces one. A text of nothing but blocks keeps its first."""
    paras = _paragraphs(text)
    if all(_is_block(p) for p in paras):
        return cut("\n".join(paras[0]), limit) if paras else ""
    out: list[str] = []
    shown = -1  # the paragraph shown with the one that announced it
    for i, para in enumerate(paras):
        if any(_UNDERLINE.match(line) for line in para):
            if out:
                break  # a heading: the next section
            continue
        if _is_block(para) or i == shown:
            continue
        block = " ".join(" ".join(para).split())
        if block.endswith(":") and i + 1 < len(paras):
            with_next = f"{block}\n\n{textwrap.dedent(chr(10).join(paras[i + 1]))}"  # its lines as they are
            if examples and len("\n\n".join([*out, with_next])) <= limit:
                block, shown = with_next, i + 1
            elif _is_block(paras[i + 1]):
                block = _drop_last_sentence(block)
        if not block or block.startswith("Copyright"):  # logging's module docstring has its licence next
            continue
        if out and (len("\n\n".join(out)) >= min_chars or len("\n\n".join([*out, block])) > limit):
            break
        out.append(block)
    text = cut("\n\n".join(out), limit)
    # a last sentence that announces what was left out ("Some functions meant for external use:")
    return (_drop_last_sentence(text) or text) if text.endswith(":") else text


def _signature_lines(doc: str, name: str) -> tuple[list[str], str]:
    """Leading lines of a docstring that are signatures ("min(iterable, *[, key=func]) -> value", the style of
    C functions without a text signature), and the docstring without them."""
    lines = doc.split("\n")
    pattern = re.compile(rf"^[\w.]*\b{re.escape(name)}\(")
    n = 0
    while n < len(lines) and pattern.match(lines[n].strip()):
        n += 1
    return [line.strip() for line in lines[:n]], "\n".join(lines[n:]).strip("\n")


def _render_signature(sig: inspect.Signature) -> str:
    """str(sig), without what differs between machines and runs (addresses, this interpreter's path)."""
    text = _ADDRESS.sub("", str(sig)).replace(repr(sys.executable), "sys.executable")
    if len(text) > MAX_SIGNATURE:
        bare = sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                           return_annotation=sig.empty)
        text = _ADDRESS.sub("", str(bare)).replace(repr(sys.executable), "sys.executable")
    if len(text) > MAX_SIGNATURE:
        text = text[:text.rfind(", ", 0, MAX_SIGNATURE - 5)] + ", ...)"
    return text.replace("\n", " ")


def callable_answer(subject: str, obj: object, doc: str, kind: str, drop_self: bool = False) -> str | None:
    """The signature line (inspect's, else the docstring's own signature lines) and the docstring's first
    paragraph; None when nothing is left to say."""
    doc = plain(inspect.cleandoc(doc))
    name = subject.rsplit(".", 1)[-1]
    doc_sigs, rest = _signature_lines(doc, name)
    own_sigs = [cut(re.sub(rf"^[\w.]*\b{re.escape(name)}\(", f"{subject}(", line), MAX_SIGNATURE)
                for line in doc_sigs[:3]]
    try:
        sig = inspect.signature(obj)
        if drop_self and sig.parameters:
            sig = sig.replace(parameters=list(sig.parameters.values())[1:])
        line = _render_signature(sig)
        if line == "(*args, **kwargs)" and own_sigs:
            raise ValueError("a signature that says nothing")  # a C class's inherited object.__init__
        sig_line = subject + line
    except Exception:  # ValueError mostly, but a C text signature can fail in any way (curses: AttributeError)
        sig_line = "\n".join(own_sigs) if own_sigs else subject + ("" if kind == "class" else "(...)")
    # a docstring that is only a signature ("random() -> x in the interval [0, 1).") says it all
    description = summary(rest) or (cut("\n".join(doc_sigs)) if sig_line != "\n".join(own_sigs) else "")
    if not description:
        return None
    prefix = "class " if kind == "class" else ""  # as the library reference writes it
    return f"{prefix}{sig_line}\n\n{description}"


def topic_answer(text: str) -> str:
    """A topic's text without its title and its underline, first paragraphs only."""
    lines = plain(text).strip("\n").split("\n")
    if len(lines) > 1 and _UNDERLINE.match(lines[1]):
        lines = lines[2:]
    body = "\n".join(line for line in lines if not line.startswith("**Source code:**"))
    return summary(body, min_chars=120, examples=False)  # a topic's blocks are grammar, not examples


def topic_name(key: str, text: str) -> tuple[str, bool]:
    if key in TOPIC_NAMES:
        return TOPIC_NAMES[key]
    title = text.strip().split("\n", 1)[0].replace('"', "")  # 'The "with" statement' -> 'the with statement'
    return title[:1].lower() + title[1:], title.endswith("s") and not title.startswith("The ")


# ---------------------------------------------------------------------------------------------------
# Subjects: walking the standard library
# ---------------------------------------------------------------------------------------------------

_STDLIB_DIRS = tuple({str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("stdlib", "platstdlib")})
_DEFAULT_DOCS = frozenset(filter(None, [
    *(getattr(v, "__doc__", None) for v in vars(object).values()),
    *(getattr(v, "__doc__", None) for v in vars(type).values()),
    object.__doc__, type.__doc__, "An enumeration.", "Initialize self.  See help(type(self)) for accurate signature.",
]))


# "Internal function." (tkinter) and "Deprecated AST node class." say: do not teach this
_NOT_FOR_USERS = re.compile(r"\s*(internal|deprecated)\b", re.I)


def _skipped(name: str) -> bool:
    parts = name.split(".")
    return (any(p.startswith("_") for p in parts) or bool(SKIP_PARTS.intersection(parts))
            or any(".".join(parts[:i]) in SKIP_MODULES for i in range(1, len(parts) + 1)))


def _quiet_import(name: str) -> ModuleType | None:
    """The module, imported with its output captured and warnings ignored; None if it fails in any way."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except KeyboardInterrupt:
        raise
    except BaseException:  # ImportError, a platform's OSError, even SystemExit: the module is skipped
        return None


def _in_stdlib(module: ModuleType) -> bool:
    """A built-in module, or a file in the standard library's folder (not site-packages, not a shadow copy)."""
    file = getattr(module, "__file__", None)
    if file is None:
        return True
    path = str(Path(file).resolve())
    return path.startswith(_STDLIB_DIRS) and "site-packages" not in path and "dist-packages" not in path


def stdlib_modules() -> list[tuple[str, ModuleType]]:
    """(public name, module) for every public standard-library module that imports, in sorted order."""
    out: list[tuple[str, ModuleType]] = []

    def visit(name: str) -> None:
        module = _quiet_import(name)
        if module is None or not _in_stdlib(module):
            return
        out.append((name, module))
        if hasattr(module, "__path__") and name not in NO_SUBMODULES:
            for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda i: i.name):
                child = f"{name}.{info.name}"
                if not _skipped(child):
                    visit(child)

    for name in sorted({*sys.stdlib_module_names, *EXTRA_MODULES}):
        if not _skipped(name):
            visit(name)
    return sorted(out, key=lambda t: t[0])


def _own_doc(obj: object, bases: tuple[type, ...] = (), attr: str | None = None) -> str | None:
    """obj's docstring if it is its own: not None or blank, not object's or type's default, not a base
    class's copied down (`attr` names the method to compare, else obj is the class)."""
    doc = vars(obj).get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip() or doc in _DEFAULT_DOCS or _NOT_FOR_USERS.match(doc):
        return None
    for base in bases:
        other = getattr(base, attr, None) if attr else base
        if other is not None and getattr(other, "__doc__", None) == doc:
            return None
    name = getattr(obj, "__name__", "")
    if isinstance(obj, type) and re.fullmatch(rf"{re.escape(name)}(\(.*\))?", doc.strip(), re.S):
        return None  # a dataclass's or namedtuple's generated "Point(x, y)", or ast.BitXor's "BitXor"
    return doc


def _home_rank(obj: object, module: ModuleType) -> int:
    """0 when `module` is obj's home: obj is defined there, in its C accelerator `_x` or in a submodule of
    its package (json.JSONEncoder is json.encoder's); 1 when the module only re-exports it."""
    origin = getattr(obj, "__module__", None) or ""
    name = module.__name__
    if origin in (name, f"_{name}", f"_{name.rsplit('.', 1)[-1]}") or origin.startswith(name + "."):
        return 0
    return 1


def _public_names(module: ModuleType) -> tuple[list[str], bool]:
    names = getattr(module, "__all__", None)
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return sorted(n for n in set(names) if not n.startswith("_")), True  # asyncio exports _enter_task
    return sorted(n for n in vars(module) if not n.startswith("_")), False


def _methods(cls: type) -> list[tuple[str, object, bool]]:
    """(name, callable, drop_self) for the public routines defined on the class itself."""
    out = []
    for name, raw in sorted(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(raw, staticmethod):
            out.append((name, raw.__func__, False))
        elif isinstance(raw, classmethod) or type(raw).__name__ == "classmethod_descriptor":
            out.append((name, getattr(cls, name), False))  # bound to the class: no cls in its signature
        elif inspect.isfunction(raw) or inspect.ismethoddescriptor(raw) and callable(raw):
            out.append((name, raw, True))
        elif inspect.isbuiltin(raw):  # a C static method such as str.maketrans
            out.append((name, raw, False))
    if len(out) > MAX_METHODS:  # a fair sample, not the first letters of the alphabet
        keep = sorted(out, key=lambda m: _digest(f"{cls.__qualname__}.{m[0]}"))[:MAX_METHODS]
        out = [m for m in out if m in keep]
    return out


def _module_subjects(display: str, module: ModuleType, claimed: dict[int, tuple[int, str]]) -> list[tuple]:
    """(subject, kind, obj, doc, drop_self) for a module, its classes and functions and their methods, the
    ones whose best home (`claimed`) is this module."""
    prefix = "" if display == "builtins" else display + "."
    out: list[tuple] = []
    doc = module.__doc__ if isinstance(module.__doc__, str) else None
    if doc and doc.strip() and display != "builtins":
        out.append((display, "module", module, doc, False))
    names, _ = _public_names(module)
    for name in names:
        obj = getattr(module, name, None)
        if claimed.get(id(obj), (None, ""))[1] != prefix + name:
            continue
        if isinstance(obj, type):
            # a class that documents its __init__ rather than itself (concurrent.futures.ThreadPoolExecutor)
            init = vars(obj).get("__init__")
            cdoc = _own_doc(obj, obj.__mro__[1:]) or (_own_doc(init, obj.__mro__[1:], "__init__") if init else None)
            if cdoc:
                out.append((prefix + name, "class", obj, cdoc, False))
            for mname, meth, drop_self in _methods(obj):
                mdoc = _own_doc(meth, obj.__mro__[1:], mname)
                if mdoc:
                    out.append((f"{prefix}{name}.{mname}", "method", meth, mdoc, drop_self))
        else:
            fdoc = _own_doc(obj)
            if fdoc:
                out.append((prefix + name, "function", obj, fdoc, False))
    return out


def subjects() -> list[tuple]:
    """Every documented subject as (subject, kind, obj, doc, drop_self), sorted by subject."""
    modules = stdlib_modules()
    # each class or function once, under its best home: lowest _home_rank, then the shortest name (the
    # package's json.JSONEncoder rather than json.encoder.JSONEncoder)
    claimed: dict[int, tuple[int, str]] = {}
    keep = []  # holds every candidate, so that no id() is reused while `claimed` is built
    for display, module in modules:
        prefix = "" if display == "builtins" else display + "."
        names, in_all = _public_names(module)
        for name in names:
            obj = getattr(module, name, None)
            if not (isinstance(obj, type) or inspect.isroutine(obj)):
                continue
            rank = _home_rank(obj, module)
            if rank and not in_all:
                continue  # imported, not defined here, and not exported on purpose
            keep.append(obj)
            best = claimed.get(id(obj))
            cand = (rank, prefix + name)
            if best is None or (cand[0], len(cand[1]), cand[1]) < (best[0], len(best[1]), best[1]):
                claimed[id(obj)] = cand
    out = [s for display, module in modules for s in _module_subjects(display, module, claimed)]
    # a name that is a submodule and an attribute of its package is the attribute, as in code: unittest.main
    objects = {s[0] for s in out if s[1] != "module"}
    return sorted((s for s in out if s[1] != "module" or s[0] not in objects), key=lambda s: s[0])


# ---------------------------------------------------------------------------------------------------
# Pairs
# ---------------------------------------------------------------------------------------------------


def _questions(kind: str, subject: str, plural: bool = False) -> list[str]:
    words = {"is": "are" if plural else "is", "does": "do" if plural else "does"}
    return [t.format(s=subject, **words) for t in PHRASINGS[kind]]


def _pairs_of(subject: str, kind: str, questions: list[str], answer: str) -> list[QA]:
    return [QA(subject, kind, q, answer, i, split_of(subject, i, len(questions))) for i, q in enumerate(questions)]


def build_fresh() -> list[QA]:
    """Build the pairs in this process, importing the whole standard library (see `build_pairs`)."""
    from pydoc_data.topics import topics

    pairs: list[QA] = []
    for subject, kind, obj, doc, drop_self in subjects():
        if kind == "module":
            answer = summary(plain(inspect.cleandoc(doc)), min_chars=120)
        else:
            answer = callable_answer(subject, obj, doc, kind, drop_self)
        if answer:
            pairs += _pairs_of(subject, kind, _questions(kind, subject), answer)
    for key in sorted(topics):
        name, plural = topic_name(key, topics[key])
        answer = topic_answer(topics[key])
        if answer:
            pairs += _pairs_of(f"topic:{key}", "topic", _questions("topic", name, plural), answer)
    return pairs


def _cache_folder() -> Path:
    from genlab.io import cache_root

    v = sys.version_info
    name = f"{sys.implementation.name}{v.major}.{v.minor}.{v.micro}-{sys.platform}-v{BUILD_VERSION}"
    return cache_root() / "pyhelp" / name


_FIELDS = [f.name for f in fields(QA)]


def _write(pairs: list[QA], path: Path) -> None:
    data = {"version": BUILD_VERSION, "python": sys.version, "fields": _FIELDS,
            "pairs": [list(astuple(p)) for p in pairs]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _build_in_child(folder: Path) -> None:
    """Run `build_fresh` in a fresh interpreter that writes folder/pairs.json (see the module docstring)."""
    import genlab

    env = dict(os.environ, PYTHONHASHSEED="0")
    src = str(Path(genlab.__file__).resolve().parent.parent)  # this genlab, wherever the child's cwd is
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, "-P", "-m", "genlab.text.pyhelp", str(folder / "pairs.json")]
    try:
        done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=900,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GenlabError(f"building text:pyhelp failed ({e}); run `python -m genlab.text.pyhelp OUT` to see why"
                          ) from None
    if done.returncode != 0 or not (folder / "pairs.json").is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GenlabError(f"building text:pyhelp failed ({last}); run `python -m genlab.text.pyhelp OUT` to see why")


def build_pairs(use_cache: bool = True) -> list[QA]:
    """Every question-answer pair of text:pyhelp: the library's subjects in sorted order, then the topics, each
    subject's phrasings in PHRASINGS order.

    Built once per Python version (seconds, in a child interpreter) and read from the cache after that
    (a fraction of a second). `use_cache=False` builds in this process and touches no cache."""
    if not use_cache:
        return build_fresh()
    from genlab.io import atomic_directory
    from genlab.text.data import BrokenCache, cached

    def build(folder: Path) -> None:
        with atomic_directory(folder) as tmp:
            _build_in_child(tmp)

    def read(folder: Path) -> list[QA]:
        try:
            data = json.loads((folder / "pairs.json").read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise BrokenCache("pairs.json is missing or not valid JSON") from None
        if not isinstance(data, dict) or data.get("version") != BUILD_VERSION or data.get("fields") != _FIELDS:
            raise BrokenCache("pairs.json is not of this version of the builder")
        rows = data.get("pairs")
        if not isinstance(rows, list) or not rows:
            raise BrokenCache("pairs.json holds no pairs")
        try:
            pairs = [QA(*row) for row in rows]
        except TypeError:
            raise BrokenCache("a row of pairs.json has the wrong fields") from None
        if any(p.split not in SPLITS or p.kind not in KINDS for p in (pairs[0], pairs[-1])):
            raise BrokenCache("pairs.json has an unknown split or kind")
        return pairs

    return cached(_cache_folder(), build, read)


def as_messages(qa: QA, system: str | None = None) -> dict:
    """One pair in OpenAI's chat fine-tuning shape, with an optional system message first."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages += [{"role": "user", "content": qa.question}, {"role": "assistant", "content": qa.answer}]
    return {"messages": messages}


def split_counts(pairs: list[QA] | None = None) -> dict[str, int]:
    """Pairs per split, every split named."""
    counts = Counter(p.split for p in (build_pairs() if pairs is None else pairs))
    return {s: counts.get(s, 0) for s in SPLITS}


def subject_counts(pairs: list[QA] | None = None) -> dict[str, int]:
    """Distinct subjects per kind, every kind named."""
    counts = Counter(kind for _, kind in {(p.subject, p.kind) for p in (build_pairs() if pairs is None else pairs)})
    return {k: counts.get(k, 0) for k in KINDS}


if __name__ == "__main__":  # the child of `_build_in_child`: python -m genlab.text.pyhelp OUT
    if len(sys.argv) != 2:
        sys.exit("usage: python -m genlab.text.pyhelp OUT.json")
    _write(build_fresh(), Path(sys.argv[1]))
