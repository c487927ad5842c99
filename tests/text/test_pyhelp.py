"""text:pyhelp: question-answer pairs from the standard library's own docs, and the chat JSONL reader."""

from __future__ import annotations

import inspect
import json
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from genlab.errors import GenlabError
from genlab.text import pyhelp
from genlab.text.conversations import ROLES, read_conversations, validate_conversation
from genlab.text.pyhelp import PHRASINGS, QA, as_messages, build_pairs, split_counts, split_of, subject_counts


@pytest.fixture(scope="module")
def pairs() -> list[QA]:
    return build_pairs()  # cold (a child interpreter, ~1-2 s) the first time in the session's cache, then read


@pytest.fixture(scope="module")
def by_subject(pairs) -> dict[str, list[QA]]:
    out: dict[str, list[QA]] = defaultdict(list)
    for p in pairs:
        out[p.subject].append(p)
    return out


def test_several_thousand_subjects_of_every_kind(pairs):
    # Python 3.11.7 on Linux: 254 modules, 867 classes, 1597 functions, 2849 methods, 79 topics (5646 subjects);
    # 22584 pairs: 15240 train, 5080 val_seen, 2264 val_unseen
    kinds = subject_counts(pairs)
    assert sum(kinds.values()) >= 4000
    assert kinds["module"] >= 150 and kinds["class"] >= 500 and kinds["function"] >= 1000
    assert kinds["method"] >= 1500 and kinds["topic"] == 79
    splits = split_counts(pairs)
    assert sum(splits.values()) == len(pairs) and min(splits.values()) > 1000


def test_json_dumps_has_its_phrasings_and_its_signature(by_subject):
    import json as json_module

    qas = by_subject["json.dumps"]
    assert {q.kind for q in qas} == {"function"}
    assert [q.question for q in qas][:3] == ["What does json.dumps do?", "How do I use json.dumps?",
                                             "Explain json.dumps."]
    assert [q.phrasing for q in qas] == list(range(len(PHRASINGS["function"])))
    answer = qas[0].answer
    assert len({q.answer for q in qas}) == 1  # one answer, however it is asked
    assert answer.startswith("json.dumps(obj, *, skipkeys=False, ensure_ascii=True, check_circular=True, ")
    assert answer.split("\n\n")[0] == "json.dumps" + str(inspect.signature(json_module.dumps))
    first_sentence = inspect.cleandoc(json_module.dumps.__doc__).split("\n")[0]  # Serialize ``obj`` to a ...
    assert first_sentence in answer


def test_builtins_classes_modules_and_topics_read_well(by_subject):
    from pydoc_data.topics import topics

    assert by_subject["str.split"][0].answer.startswith("str.split(sep=None, maxsplit=-1)\n\n")  # no self
    assert by_subject["len"][0].kind == "function" and "builtins.len" not in by_subject
    assert by_subject["json.JSONEncoder"][0].answer.startswith("class json.JSONEncoder(*, skipkeys=False")
    assert "json.encoder.JSONEncoder" not in by_subject  # asked about once, under the package's name
    assert "min(iterable" in by_subject["min"][0].answer  # no inspect signature: the docstring's own line
    assert by_subject["os.path.join"][0].question == "What does os.path.join do?"
    assert by_subject["json"][0].question == "What is the json module for?"
    assert {s for s in by_subject if s.startswith("topic:")} == {f"topic:{k}" for k in topics}
    assert by_subject["topic:with"][0].question == "What is the with statement?"
    assert by_subject["topic:slicings"][0].question == "What are slicings?"
    assert by_subject["topic:with"][0].answer.startswith('The "with" statement is used to wrap')
    for skipped in ("this", "antigravity", "turtle", "idlelib", "lib2to3", "distutils", "posixpath"):
        assert not any(s == skipped or s.startswith(skipped + ".") for s in by_subject)


def test_answers_are_plain_text_and_bounded(pairs):
    for p in pairs:
        assert p.answer.strip() and p.question.strip(), p.subject
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", p.answer), p.subject  # only newline
        assert " at 0x" not in p.answer, p.subject  # no addresses: the same on every run
        description = p.answer.split("\n\n", 1)[-1] if p.kind not in ("module", "topic") else p.answer
        assert len(description) <= pyhelp.MAX_ANSWER + 3, p.subject
        assert p.kind in pyhelp.KINDS and p.split in pyhelp.SPLITS


def test_split_is_by_subject_and_a_pure_function_of_it(pairs, by_subject):
    for p in pairs:
        assert p.split == split_of(p.subject, p.phrasing, len(PHRASINGS[p.kind]))
    # sha256 of the name alone: these hold on every Python, machine and run
    assert [split_of("json.dumps", i, 4) for i in range(4)] == ["train", "train", "train", "val_seen"]
    assert [split_of("ValueError", i, 4) for i in range(4)] == ["val_unseen"] * 4
    unseen = 0
    for subject, qas in by_subject.items():
        splits = sorted(q.split for q in qas)
        if "val_unseen" in splits:
            unseen += 1
            assert set(splits) == {"val_unseen"}, subject  # held out whole: never in train too
        else:  # one phrasing held out, the others trained on
            assert splits.count("val_seen") == 1 and splits.count("train") == len(qas) - 1 >= 1, subject
    assert 0.08 < unseen / len(by_subject) < 0.12
    assert len({(p.subject, p.phrasing) for p in pairs}) == len(pairs)


def test_cold_build_is_cached_and_heals(pairs, cache, capsys):
    fresh = build_pairs()  # an empty cache of its own: built again in a child interpreter
    assert fresh == pairs
    [folder] = [p for p in (cache / "pyhelp").iterdir() if not p.name.startswith(".")]
    assert folder.name.endswith(f"-v{pyhelp.BUILD_VERSION}")
    start = time.perf_counter()
    assert build_pairs() == pairs
    assert time.perf_counter() - start < 0.5  # warm: one JSON file read
    (folder / "pairs.json").write_text('{"version": 1, "pairs": "torn')
    assert build_pairs() == pairs  # a broken cache is removed and built again, with one line on stderr
    assert "pairs.json is missing or not valid JSON" in capsys.readouterr().err


def test_as_messages_is_openai_fine_tuning_shape(pairs):
    qa = pairs[0]
    assert as_messages(qa) == {"messages": [{"role": "user", "content": qa.question},
                                            {"role": "assistant", "content": qa.answer}]}
    with_system = as_messages(qa, system="You answer questions about Python.")
    assert [m["role"] for m in with_system["messages"]] == ["system", "user", "assistant"]
    assert read_conversations_of([with_system])  # what it makes, the reader takes


# ---------------------------------------------------------------------------------------------------
# The conversation reader
# ---------------------------------------------------------------------------------------------------


def read_conversations_of(objects: list[dict]) -> list[list[dict]]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "chat.jsonl")
        path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
        return read_conversations(path)


def _write(tmp_path: Path, text: str | bytes, name: str = "chat.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


GOOD = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi", "name": "ann"},
                     {"role": "assistant", "content": "Hello.", "weight": 0},
                     {"role": "user", "content": "Again"}, {"role": "assistant", "content": "Hello!", "weight": 1}],
        "id": "c1"}


def test_reader_takes_both_shapes_keeps_names_and_weights(tmp_path):
    text = json.dumps(GOOD) + "\n\n   \n" + json.dumps({"prompt": "2+2?", "completion": "4"}) + "\r\n"
    convs = read_conversations(_write(tmp_path, text))
    assert convs[0] == GOOD["messages"]  # name and weight kept, the id (metadata) dropped
    assert convs[1] == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    as_list = read_conversations(_write(tmp_path, json.dumps([GOOD, GOOD]), "chat.json"))
    assert as_list == [convs[0], convs[0]]
    assert ROLES == ("system", "user", "assistant")


def _msgs(*messages: dict) -> str:
    return json.dumps({"messages": list(messages)})


U = {"role": "user", "content": "q"}
A = {"role": "assistant", "content": "a"}


@pytest.mark.parametrize("line, expected", [
    ('{"messages": [', "line 2: not valid JSON"),
    ('"just text"', "line 2: it is a string, not an object"),
    ('{"text": "hello"}', "line 2: it is neither shape (it has text)"),
    (_msgs(U, {"role": "tool", "content": "x"}), "line 2: messages[1] has the unknown role 'tool'; use one of "
                                                 "system, user, assistant"),
    (_msgs({"content": "x"}, A), "messages[0] has no role"),
    (_msgs(U, {"role": "assistant", "content": 5}), "line 2: messages[1] has content that is a number, not a string"),
    (_msgs(U, {"role": "assistant", "content": None}), "content that is null"),
    (_msgs(), "line 2: the conversation is empty"),
    (json.dumps({"messages": "hi"}), "line 2: messages is a string, not a list"),
    (_msgs(U), "line 2: the conversation has no assistant message"),
    (_msgs(U, {**A, "weight": 0}), "no assistant message to learn from"),
    (_msgs({**U, "weight": 1}, A), "messages[0] is a user message with a weight"),
    (_msgs(U, {**A, "weight": 2}), "messages[1] has the weight 2"),
    (_msgs(U, {**A, "weight": True}), "messages[1] has the weight True"),
    (_msgs(U, {"role": "system", "content": "s"}, A), "messages[1] is a system message after the first"),
    (_msgs(U, {**A, "tool_calls": []}), "messages[1] has the unknown key 'tool_calls'"),
    (_msgs(U, {**A, "name": 3}), "messages[1] has a name that is a number"),
    (json.dumps({"messages": [U, A], "tools": []}), "line 2: it has 'tools'; tool calling is not supported"),
    (json.dumps({"messages": [U, A], "prompt": "p"}), "both messages and prompt/completion"),
    (json.dumps({"prompt": "p", "completion": ["c"]}), "its completion is a list, not a string"),
    (json.dumps({"prompt": "p"}), "neither shape (it has prompt)"),
])
def test_reader_errors_name_the_file_and_line(tmp_path, line, expected):
    path = _write(tmp_path, json.dumps({"prompt": "p", "completion": "c"}) + "\n" + line + "\n")
    with pytest.raises(GenlabError) as e:
        read_conversations(path)
    message = str(e.value)
    assert expected in message and message.startswith(f"{path}, line 2: ") and "\n" not in message


def test_reader_refuses_bad_files(tmp_path):
    cases = [
        (_write(tmp_path, "\n  \n", "blank.jsonl"), "holds no conversations"),
        (tmp_path / "missing.jsonl", "does not exist"),
        (_write(tmp_path, b'{"prompt": "p", "completion": "c"}\n\n{"prompt": "\xff"}\n', "latin.jsonl"),
         "line 3: not UTF-8"),
        (_write(tmp_path, json.dumps([GOOD, {"messages": [U]}]), "list.json"), "item 2: the conversation has no "
                                                                               "assistant message"),
        (_write(tmp_path, "[\n" + json.dumps(GOOD) + ",\n]", "trailing.json"), "line 3: not valid JSON"),
        (_write(tmp_path, "[]", "empty.json"), "holds no conversations"),
        (tmp_path, "is a folder"),
    ]
    for path, expected in cases:
        with pytest.raises(GenlabError, match=re.escape(expected)):
            read_conversations(path)


def test_validate_conversation_serves_requests_too():
    # a request's messages end with the user's turn: no assistant message needed, errors without a file
    assert validate_conversation([{"role": "system", "content": "s"}, U]) == [{"role": "system", "content": "s"}, U]
    with pytest.raises(GenlabError, match=r"^messages\[0\] has the unknown role 'bot'; use one of system, user"):
        validate_conversation([{"role": "bot", "content": "x"}])
