"""The code-eval metrics on hand-made good and broken snippets, and on real stdlib source as the baseline."""

import inspect
import posixpath
import shutil
import sys

import numpy as np
import pytest

from genlab.text.code_metrics import (
    COPY_RUN,
    CopyIndex,
    Resolution,
    code_figures,
    compiles,
    copied_tokens,
    copy_figures,
    distinct_n,
    first_function,
    held_out_functions,
    longest_shared_run,
    name_resolution,
    parses,
    resolves,
)

GOOD = '''def join_all(root, parts):
    """Paths under root, sorted."""
    out = []
    for p in parts:
        out.append(os.path.join(root, p))
    return sorted(out)
'''
BROKEN = "def join_all(root, parts:\n    return os.path.join(root, parts)\n"
WRONG = "def join_all(root, parts):\n    return [os.path.joinx(root, p) for p in parts]\n"

# ast.parse accepts these; the compiler's symbol table and checks refuse them
PARSE_NOT_COMPILE = [
    "def f():\n    nonlocal x\n    x = 1\n",  # no binding for nonlocal 'x'
    "def f(x):\n    global x\n",  # name 'x' is parameter and global
    "def f():\n    await g()\n",  # 'await' outside async function
    "def f():\n    from os import *\n",  # import * only allowed at module level
    "return 1\n",  # 'return' outside function
    "break\n",  # 'break' outside loop
]


def test_a_good_function_parses_compiles_and_resolves():
    assert parses(GOOD) and compiles(GOOD) and resolves(GOOD)
    r = name_resolution(GOOD)
    # names root, parts, out, p, os, sorted; the chain os.path.join
    assert r == Resolution(used=7, resolved=7, unknown=0, wrong=0)


def test_an_unclosed_paren_neither_parses_nor_compiles():
    assert not parses(BROKEN) and not compiles(BROKEN) and not resolves(BROKEN)
    assert name_resolution(BROKEN) == Resolution(0, 0, 0, 0)


@pytest.mark.parametrize("code", PARSE_NOT_COMPILE)
def test_parses_but_does_not_compile(code):
    assert parses(code) and not compiles(code) and not resolves(code)


@pytest.mark.parametrize("code", ["", "   \n\n", "def f():\n    return '\0'\n"])
def test_blank_code_and_nul_bytes_are_not_functions(code):
    assert not parses(code) and not compiles(code)


def test_a_missing_stdlib_attribute_is_wrong():
    assert parses(WRONG) and compiles(WRONG) and not resolves(WRONG)
    assert name_resolution(WRONG).wrong == 1
    cases = {
        "def f(s):\n    return dict.iteritems(s)\n": 1,  # a builtin's missing attribute (Python 2)
        "def f(s):\n    return str.maketrans(s, s)\n": 0,
        "from os import joinx\ndef f(s):\n    return joinx(s)\n": 1,  # an import that cannot work
        "import os.path as osp\ndef f(s):\n    return osp.joinx(s)\n": 1,  # through an alias
        "from os import path\ndef f(s):\n    return path.join(s)\n": 0,
        "def f(s):\n    return xml.etree.ElementTree.fromstring(s)\n": 0,  # a submodule not yet imported
        "def f(s):\n    return datetime.strptime(s, '%Y')\n": 0,  # `from datetime import datetime` above
        "def f(os):\n    return os.joinx\n": 0,  # a parameter shadows the module: not judged
        "def f():\n    os.custom = 1\n": 0,  # a store makes its attribute
    }
    for code, wrong in cases.items():
        assert name_resolution(code).wrong == wrong, code


def test_unseen_module_helpers_are_unknown_not_wrong():
    code = ("def f(self, items):\n    n = MAX_ITEMS\n    return self.cache.get(_helper(items), n) + "
            "len(__name__)\n")
    r = name_resolution(code)
    # self, items, n, len, __name__ resolve; _helper is unknown; MAX_ITEMS (a module constant) and the
    # chain self.cache.get are not judged
    assert r == Resolution(used=6, resolved=5, unknown=1, wrong=0)
    assert compiles(code) and not resolves(code)
    # a relative or non-stdlib import cannot be checked against anything real
    assert name_resolution("def f():\n    from . import util\n    return util\n").unknown == 1
    assert name_resolution("def f():\n    import not_a_real_module_xyz\n").unknown == 1


def test_modules_that_act_on_import_are_never_imported():
    code = "def f():\n    import antigravity\n    return this.s + idlelib.x\n"
    r = name_resolution(code)
    assert "antigravity" not in sys.modules and "this" not in sys.modules and "idlelib" not in sys.modules
    assert r.wrong == 0  # what cannot be checked is not called wrong


def test_code_figures_count_each_kind():
    figs = code_figures([GOOD, BROKEN, WRONG, PARSE_NOT_COMPILE[0]])
    assert figs["functions"] == 4
    assert figs["parse_rate"] == 0.75 and figs["compile_rate"] == 0.5
    assert figs["resolve_rate"] == 0.25 and figs["wrong_stdlib_rate"] == 0.25
    assert figs["names_wrong"] == 1
    assert figs["name_resolution_share"] == round(figs["names_resolved"] / figs["names_used"], 4)
    assert code_figures([])["parse_rate"] == 0.0


def test_first_function_stops_before_the_next_top_level_statement():
    sample = ("import os\n\n@functools.lru_cache()\n@trace\ndef f(x):\n    '''Doc whose lines\nreach column 0.\n'''\n"
              "    y = (x +\n1)\n\n    return y\n\n# about g\n\ndef g():\n    pass\n")
    got = first_function(sample)
    assert got == ("@functools.lru_cache()\n@trace\ndef f(x):\n    '''Doc whose lines\nreach column 0.\n'''\n"
                   "    y = (x +\n1)\n\n    return y\n")
    assert parses(got)
    assert first_function("def f(): return 1\nx = f()\n") == "def f(): return 1\n"
    assert first_function("async def f():\n    await g()\nclass A: pass\n") == "async def f():\n    await g()\n"


def test_first_function_on_a_cut_sample_returns_what_is_there():
    cut = "def parse_args(argv):\n    parser = make_parser(\n        prog='x',\n        descr"
    assert first_function(cut) == cut + "\n"
    assert not parses(first_function(cut))
    in_string = "def f():\n    '''never closed\nsome text\n"
    assert first_function(in_string) == in_string
    assert first_function("no function here\n") == ""


def test_first_function_dedents_a_method_and_survives_bad_indentation():
    method = "class A:\n    def m(self):\n        return 1\n\n    def n(self):\n        pass\n"
    assert first_function(method) == "def m(self):\n    return 1\n"
    # an unindent that matches no level: tokenize fails, the line rule cuts at the next column-0 line
    assert first_function("def f(x):\n        a\n      b\nc = 1\n") == "def f(x):\n        a\n      b\n"


def test_distinct_n_known_values():
    assert distinct_n([[1, 2, 1, 2]], 1) == 0.5
    assert distinct_n([[1, 2, 1, 2]], 2) == 0.6667  # (1,2) (2,1) (1,2)
    assert distinct_n([[1, 2], [2, 3]], 2) == 1.0  # no n-gram across two sequences
    assert distinct_n([np.array([7, 7, 7])], 2) == 0.5
    assert distinct_n([["def", "f", "(", "def", "f"]], 2) == 0.75
    assert distinct_n([[1]], 2) == 0.0 and distinct_n([], 1) == 0.0
    with pytest.raises(ValueError):
        distinct_n([[1, 2]], 0)


def _brute_lengths(sample, ref):
    out = []
    for i in range(len(sample)):
        best = 0
        for p in range(len(ref)):
            run = 0
            while i + run < len(sample) and p + run < len(ref) and sample[i + run] == ref[p + run]:
                run += 1
            best = max(best, run)
        out.append(best)
    return out


def test_longest_shared_run_on_a_hand_made_reference():
    ref = [5, 1, 2, 3, 4, 9, 1, 2, 7]
    index = CopyIndex(ref)
    assert index.matching_lengths([0, 1, 2, 3, 4, 8]).tolist() == [0, 4, 3, 2, 1, 0]
    assert longest_shared_run([0, 1, 2, 3, 4, 8], index) == 4
    assert longest_shared_run([9, 1, 2, 7, 7], ref) == 4  # the stream's end ends the run
    assert longest_shared_run([100, 200], index) == 0  # ids the stream never had
    assert longest_shared_run([], index) == 0 and longest_shared_run([1, 2], []) == 0


def test_matching_lengths_agree_with_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        vocab = int(rng.integers(1, 5))
        ref = rng.integers(0, vocab, int(rng.integers(1, 80)))
        sample = np.concatenate([ref[2:20], rng.integers(0, vocab + 2, 20)])
        max_run = int(rng.choice([4, 1024]))
        got = CopyIndex(ref, max_run=max_run).matching_lengths(sample)
        assert got.tolist() == np.minimum(_brute_lengths(sample.tolist(), ref.tolist()), max_run).tolist()


def test_copy_rate_counts_tokens_inside_long_shared_runs():
    ref = np.arange(100)
    sample = [200] * 10 + list(range(30, 60)) + [201] * 10  # a 30-token copy in 50 tokens
    figs = copy_figures([sample, [300] * 50], ref, threshold=20)
    assert figs["copy_rate"] == 0.3  # 30 of 100 sample tokens
    assert figs["copied_sample_share"] == 0.5
    assert figs["longest_copied_run_max"] == 30 and figs["longest_copied_run_mean"] == 15.0
    assert copy_figures([sample], ref, threshold=31)["copy_rate"] == 0.0
    # overlapping runs cover their union once
    assert copied_tokens(np.array([5, 4, 3, 2, 1, 0, 0, 0, 0, 0]), threshold=3).tolist() == [True] * 5 + [False] * 5
    assert COPY_RUN == copy_figures([sample], CopyIndex(ref))["copy_threshold"]


def _cut_source(module, head: int = 700, tail: int = 400) -> str:
    """A module's source cut mid-file at both ends, as a validation split is."""
    src = inspect.getsource(module)
    return src[head:-tail]


def test_held_out_functions_on_a_slice_of_real_source():
    source = _cut_source(posixpath)
    fns = held_out_functions(source, 1000)
    assert len(fns) >= 15
    assert all(f.startswith(("def ", "@")) and "def " in f for f in fns)
    assert fns[0] in source and source.index(fns[0]) == source.index("\ndef ") + 1
    # the slice's last function runs past its end: left out
    last = source.rindex("\ndef ") + 1
    assert not any(source.index(f) == last for f in fns)
    assert held_out_functions(source, 5, seed=1) == held_out_functions(source, 5, seed=1)
    assert len(held_out_functions(source, 5)) == 5


def test_real_stdlib_functions_are_the_baseline():
    fns = held_out_functions(_cut_source(posixpath) + "\n\n" + _cut_source(shutil), 200)
    figs = code_figures(fns)
    assert figs["parse_rate"] >= 0.9 and figs["compile_rate"] >= 0.9
    # real code seldom calls what does not exist; shutil's macOS and Windows branches (posix._fcopyfile,
    # os.lchmod) are its floor on Linux
    assert figs["wrong_stdlib_rate"] <= 0.1
    assert figs["name_resolution_share"] >= 0.7
