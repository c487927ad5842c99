"""The feedback store: round trips, preference exports, writers killed mid-way, migrations, and every refusal."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from genlab.align import store as store_module
from genlab.align.store import (
    FeedbackStore,
    _insert_output,
    _output_row,
    export_preferences,
    import_preferences,
    read_preference_file,
)
from genlab.errors import GenlabError

SHA_A, SHA_B = "a" * 64, "b" * 64


def _out(model="runs/a", sha=SHA_A, modality="text", **kw):
    return {"model": model, "checkpoint_sha256": sha, "modality": modality, **kw}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "feedback.sqlite") as s:
        yield s


def _fill(store):
    """Four comparisons between runs/a and runs/b, one per winner; only the first two are preference pairs."""
    ids = {}
    for winner, prompt in zip(("a", "b", "tie", "both_bad"), ("Once", "The cat", "Hi", "Why"), strict=True):
        ids[winner] = store.record_comparison(
            output_a=_out(content=f"{prompt} A", controls={"temperature": 0.8, "top_k": 40}, seed=1),
            output_b=_out("runs/b", SHA_B, content=f"{prompt} B", tokenizer_sha256="c" * 64, seed=2),
            prompt=prompt, left="b", winner=winner, rater="ann", latency_s=3.5)
    return ids


def test_round_trip(store, tmp_path):
    ids = _fill(store)
    out = ids["a"][0]
    assert store.add_rating(out, score=5, tags=["funny", "on-topic"], reason="made me laugh", rater="ann") == 1
    assert store.add_rating(out, thumbs=-1) == 2
    assert store.counts() == {"outputs": 8, "ratings": 2, "comparisons": 4, "pairs": 2}

    pairs = store.preference_pairs()
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("Once", "Once A", "Once B"), ("The cat", "The cat B", "The cat A")]
    first = pairs[0]
    assert first["chosen_model"] == "runs/a" and first["chosen_checkpoint_sha256"] == SHA_A
    assert first["chosen_controls"] == {"temperature": 0.8, "top_k": 40, "seed": 1}  # the seed joins the controls
    assert first["rejected_tokenizer_sha256"] == "c" * 64 and first["rejected_modality"] == "text"
    assert first["chosen_file"] is None

    assert len(store.preference_pairs(model="runs/b")) == 2  # either side counts
    assert len(store.preference_pairs(model="runs/a", checkpoint_sha256=SHA_B)) == 0
    assert store.preference_pairs(model="runs/none") == []
    assert store.models() == [
        {"model": "runs/a", "checkpoint_sha256": SHA_A, "modality": "text", "outputs": 4, "pairs": 2},
        {"model": "runs/b", "checkpoint_sha256": SHA_B, "modality": "text", "outputs": 4, "pairs": 2},
    ]
    store.close()

    with FeedbackStore(tmp_path / "feedback.sqlite", readonly=True) as again:  # what was acknowledged stays
        assert again.counts()["pairs"] == 2
        assert again.check_integrity() == "ok"
        row = again._db.execute("SELECT r.created_at, r.tags, o.seed FROM ratings r JOIN outputs o ON o.id = "
                                "r.output_id WHERE r.id = 1").fetchone()
    assert row[0].endswith("Z") and json.loads(row[1]) == ["funny", "on-topic"] and row[2] == 1
    raw = sqlite3.connect(tmp_path / "feedback.sqlite")
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with pytest.raises(sqlite3.IntegrityError):  # CHECK constraints hold even for raw SQL
        raw.execute("INSERT INTO comparisons (prompt, output_a, output_b, left, winner) VALUES ('', 1, 2, 'a', 'c')")
    raw.close()


def test_empty_store_gives_no_pairs(store, tmp_path):
    assert store.preference_pairs() == []
    assert store.counts() == {"outputs": 0, "ratings": 0, "comparisons": 0, "pairs": 0}
    assert export_preferences(store, tmp_path / "empty.jsonl") == 0
    assert (tmp_path / "empty.jsonl").read_text() == ""


def test_a_comparison_and_its_outputs_are_one_transaction(store, monkeypatch):
    def fail(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store_module, "_insert_comparison", fail)
    with pytest.raises(GenlabError, match="disk I/O error"):
        store.record_comparison(output_a=_out(content="x"), output_b=_out(content="y"), prompt="", left="a",
                                winner="a")
    assert store.counts()["outputs"] == 0  # both outputs rolled back with the comparison


def test_shared_between_threads(store):
    out = store.add_output(**_out(content="x"))
    threads = [threading.Thread(target=lambda: [store.add_rating(out, thumbs=1) for _ in range(25)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.counts()["ratings"] == 100


def test_trl_export_import_export_is_identical(store, tmp_path):
    _fill(store)
    store.record_comparison(output_a=_out(content="naïve\nline two \u2028 \"quoted\""), output_b=_out(content="b"),
                            prompt="ünïcode", left="a", winner="a")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert export_preferences(store, first) == 3
    lines = first.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(list(json.loads(line)) == ["prompt", "chosen", "rejected"] for line in lines)
    assert read_preference_file(first)[2] == {"prompt": "ünïcode", "chosen": "naïve\nline two \u2028 \"quoted\"",
                                              "rejected": "b"}

    with FeedbackStore(tmp_path / "fresh.sqlite") as fresh:
        assert import_preferences(fresh, first, model="runs/imported") == 3
        assert fresh.counts() == {"outputs": 6, "ratings": 0, "comparisons": 3, "pairs": 3}
        assert export_preferences(fresh, second) == 3
    assert second.read_bytes() == first.read_bytes()


def test_openai_export_shape(store, tmp_path):
    _fill(store)
    assert export_preferences(store, tmp_path / "openai.jsonl", format="openai", model="runs/a") == 2
    rows = [json.loads(line) for line in (tmp_path / "openai.jsonl").read_text().splitlines()]
    assert rows[1] == {
        "input": {"messages": [{"role": "user", "content": "The cat"}]},
        "preferred_output": [{"role": "assistant", "content": "The cat B"}],
        "non_preferred_output": [{"role": "assistant", "content": "The cat A"}],
    }
    assert all(set(r) == {"input", "preferred_output", "non_preferred_output"} for r in rows)
    assert "Hi" not in json.dumps(rows) and "Why" not in json.dumps(rows)  # the tie and both-bad are left out


def test_an_image_exports_its_file_path(store, tmp_path):
    store.record_comparison(output_a=_out(modality="images", file="outputs/0001.png"),
                            output_b=_out(modality="images", file=tmp_path / "0002.png"), prompt="", left="a",
                            winner="b")
    export_preferences(store, tmp_path / "images.jsonl")
    row = json.loads((tmp_path / "images.jsonl").read_text())
    assert row == {"prompt": "", "chosen": str(tmp_path / "0002.png"), "rejected": "outputs/0001.png"}


# -- several writers at once, one killed ------------------------------------------------------------------------

WRITER = r"""
import os, sys
from genlab.align.store import FeedbackStore
path, name, n, acks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with FeedbackStore(path) as store, open(acks, "a") as log:
    output = store.add_output(model="runs/w", checkpoint_sha256="0" * 64, modality="text", content=name)
    for i in range(n):
        rating = store.add_rating(output, score=i % 5 + 1, rater=name)
        log.write(f"{rating}\n")  # acknowledged: add_rating returned after COMMIT
        log.flush()
        os.fsync(log.fileno())
"""


def _acknowledged(path):
    text = path.read_text() if path.exists() else ""
    return {int(line) for line in text.split("\n")[:-1]}  # a line cut by the kill has no newline: not counted


def test_concurrent_writers_one_killed(tmp_path):
    path = tmp_path / "feedback.sqlite"  # not there yet: the four writers race to create it too
    names, victim = ["w0", "w1", "w2", "w3"], "w0"
    acks = {name: tmp_path / f"{name}.acks" for name in names}
    procs = {name: subprocess.Popen([sys.executable, "-c", WRITER, str(path), name,
                                     str(10**6 if name == victim else 200), str(acks[name])],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in names}
    try:
        deadline = time.monotonic() + 30
        while len(_acknowledged(acks[victim])) < 50:
            assert procs[victim].poll() is None, procs[victim].communicate()[1]
            assert time.monotonic() < deadline, "the victim never acknowledged 50 ratings"
            time.sleep(0.002)
        procs[victim].send_signal(signal.SIGKILL)
        assert procs[victim].wait(10) == -signal.SIGKILL
        for name in names[1:]:
            _, err = procs[name].communicate(timeout=60)
            assert procs[name].returncode == 0, err
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    with FeedbackStore(path, create=False) as store:
        assert store.check_integrity() == "ok"
        stored = {name: {i for (i,) in store._db.execute("SELECT id FROM ratings WHERE rater = ?", (name,))}
                  for name in names}
    for name in names:
        acked = _acknowledged(acks[name])
        assert acked <= stored[name], f"{name}: acknowledged ratings lost"
        if name == victim:
            assert len(stored[name]) - len(acked) in (0, 1)  # at most the one committed just before the kill
        else:
            assert len(acked) == len(stored[name]) == 200


# -- refusals: one line each, and the file left as it was -------------------------------------------------------


def _refused(path, match, **kw):
    before = _sha(path) if path.is_file() else None
    with pytest.raises(GenlabError, match=match) as e:
        FeedbackStore(path, **kw)
    assert "\n" not in str(e.value)
    if before is not None:
        assert _sha(path) == before
    return str(e.value)


def test_not_sqlite(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("SQLite is great, but this is a text file\n")
    _refused(path, "not a feedback store \\(not an SQLite file\\)")


@pytest.mark.parametrize("table", ["notes (id INTEGER PRIMARY KEY, body TEXT)", "meta (k TEXT, v TEXT)"])
def test_another_programs_sqlite(tmp_path, table):
    path = tmp_path / "app.db"
    raw = sqlite3.connect(path)
    raw.execute(f"CREATE TABLE {table}")
    raw.execute(f"INSERT INTO {table.split()[0]} VALUES (1, 'keep me')")
    raw.commit()
    raw.close()
    _refused(path, "SQLite database of another program .*genlab will not write into it")
    assert [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")] == [table.split()[0]]


def test_newer_schema(tmp_path):
    path = tmp_path / "feedback.sqlite"
    FeedbackStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 7")
    raw.close()
    message = _refused(path, "was written by a newer genlab")
    assert message.endswith(f"(schema 7, this one reads up to {len(store_module.MIGRATIONS)}); upgrade genlab")


def test_corrupted_store(tmp_path):
    path = tmp_path / "feedback.sqlite"
    with FeedbackStore(path) as store, store._transaction() as db:
        for i in range(400):
            db.execute("INSERT INTO outputs (model, checkpoint_sha256, modality, content) VALUES (?, ?, ?, ?)",
                       ("runs/a", SHA_A, "text", f"sample {i} " * 20))
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = raw.execute("PRAGMA page_size").fetchone()[0]
    raw.close()
    size = path.stat().st_size
    assert size > 40 * page
    assert not os.path.exists(f"{path}-wal") or os.path.getsize(f"{path}-wal") == 0
    with open(path, "r+b") as f:  # two whole pages in the middle of the outputs table, overwritten
        f.seek(size // 2 // page * page)
        f.write(b"\xa5" * 2 * page)
    _refused(path, "is corrupted .*restore it from a backup")
    _refused(path, "is corrupted", readonly=True)


def test_path_errors(tmp_path):
    _refused(tmp_path / "missing" / "feedback.sqlite", "folder .*missing does not exist")
    _refused(tmp_path, "is a folder; give the feedback store's file path")
    for kw in ({"create": False}, {"readonly": True}):
        message = _refused(tmp_path / "feedback.sqlite", "no feedback store at", **kw)
        assert message.endswith("collect ratings first with genlab rate RUN")
    assert not (tmp_path / "feedback.sqlite").exists()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    _refused(empty, "no feedback store at", create=False)
    with FeedbackStore(empty) as store:  # a 0-byte file is a new store
        assert store.counts()["outputs"] == 0


BAD_VALUES = {
    "score 7": (lambda s, a, b: s.add_rating(a, score=7), "score must be a whole number from 1 to 5, not 7"),
    "score and thumbs": (lambda s, a, b: s.add_rating(a, score=3, thumbs=1), "exactly one of score"),
    "thumbs 0": (lambda s, a, b: s.add_rating(a, thumbs=0), "thumbs must be"),
    "tags string": (lambda s, a, b: s.add_rating(a, score=3, tags="funny"), "tags must be a list of strings"),
    "unknown output": (lambda s, a, b: s.add_rating(999, score=3), "no output 999 in"),
    "winner c": (lambda s, a, b: s.add_comparison(prompt="", output_a=a, output_b=b, left="a", winner="c"),
                 "winner must be one of a, b, tie, both_bad, not 'c'"),
    "left x": (lambda s, a, b: s.add_comparison(prompt="", output_a=a, output_b=b, left="x", winner="a"),
               "left must be one of a, b"),
    "same output": (lambda s, a, b: s.add_comparison(prompt="", output_a=a, output_b=a, left="a", winner="a"),
                    "compare two different outputs"),
    "latency": (lambda s, a, b: s.add_comparison(prompt="", output_a=a, output_b=b, left="a", winner="a",
                                                 latency_s=-1), "latency_s must be"),
    "modality": (lambda s, a, b: s.add_output(**_out(modality="", content="x")), "modality is empty"),
    "no content": (lambda s, a, b: s.add_output(**_out()), "needs its content"),
    "seed twice": (lambda s, a, b: s.add_output(**_out(content="x", seed=1, controls={"seed": 2})), "give the seed"),
    "unknown key": (lambda s, a, b: s.record_comparison(output_a=_out(content="x", colour=1),
                                                        output_b=_out(content="y"), prompt="", left="a", winner="a"),
                    "unknown keys \\['colour'\\]"),
    "format": (lambda s, a, b: export_preferences(s, s.path.with_name("p.csv"), format="csv"),
               "format must be one of trl, openai"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values(store, case):
    a, b = store.add_output(**_out(content="a")), store.add_output(**_out(content="b"))
    before = store.counts()
    call, match = BAD_VALUES[case]
    with pytest.raises(GenlabError, match=match) as e:
        call(store, a, b)
    assert "\n" not in str(e.value)
    assert store.counts() == before
    assert not store.path.with_name("p.csv").exists()


# -- migrations -------------------------------------------------------------------------------------------------


def _v1_store(path, monkeypatch):
    """A store as genlab's first schema made it: a rating and a comparison."""
    with monkeypatch.context() as m:
        m.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
        with FeedbackStore(path) as store:
            store.add_rating(store.add_output(**_out(content="x")), score=4)
            with store._transaction() as db:
                a, b = (_insert_output(db, _output_row(**_out(content=c))) for c in "ab")
                db.execute("INSERT INTO comparisons (prompt, output_a, output_b, left, winner) VALUES ('', ?, ?, 'a', "
                           "'b')", (a, b))


def _columns(path, table):
    with sqlite3.connect(path) as raw:
        return [row[1] for row in raw.execute(f"PRAGMA table_info({table})")], raw.execute(
            "PRAGMA user_version").fetchone()[0]


def test_a_first_schema_store_gains_comparison_reasons(tmp_path, monkeypatch):
    path = tmp_path / "feedback.sqlite"
    _v1_store(path, monkeypatch)
    assert "reason" not in _columns(path, "comparisons")[0]
    with FeedbackStore(path) as store:
        assert [c["reason"] for c in store.comparisons()] == [None]  # the old vote is kept, without a reason
        *_, kept = store.record_comparison(output_a=_out(content="c"), output_b=_out(content="d"), prompt="",
                                           left="b", winner="tie", reason="both fine")
        assert store.comparisons()[-1]["reason"] == "both fine" and kept == 2
    columns, version = _columns(path, "comparisons")
    assert version == len(store_module.MIGRATIONS) == 2 and "reason" in columns


def test_migration_to_a_later_version(tmp_path, monkeypatch):
    path = tmp_path / "feedback.sqlite"
    _v1_store(path, monkeypatch)
    FeedbackStore(path).close()
    now = len(store_module.MIGRATIONS)
    seen = []

    def later(db):
        seen.append(db.in_transaction)
        db.execute("ALTER TABLE ratings ADD COLUMN weight REAL NOT NULL DEFAULT 1.0")
        db.execute("UPDATE ratings SET weight = 2.0")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, later])
    _refused(path, f"is at schema {now} and this genlab needs {now + 1}; open it once for writing", readonly=True)
    with FeedbackStore(path) as store:
        assert store.counts()["ratings"] == 1
    FeedbackStore(path).close()  # already there: nothing runs again
    assert seen == [True]
    columns, version = _columns(path, "ratings")
    assert version == now + 1 and "weight" in columns
    assert sqlite3.connect(path).execute("SELECT score, weight FROM ratings").fetchall() == [(4, 2.0)]


def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "feedback.sqlite"
    _v1_store(path, monkeypatch)

    def v2(db):
        db.execute("ALTER TABLE ratings ADD COLUMN weight REAL")

    def v3(db):
        db.execute("DELETE FROM ratings")
        raise ValueError("bad step")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, v2, v3])
    last = len(store_module.MIGRATIONS)
    message = _refused(path, f"cannot upgrade .* from schema 1 to {last} \\(bad step\\); it is left at schema 1, "
                       "unchanged")
    assert "\n" not in message
    columns, version = _columns(path, "ratings")
    assert version == 1 and "weight" not in columns  # every pending step rolled back with the last: one transaction
    assert "reason" not in _columns(path, "comparisons")[0]
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    with FeedbackStore(path) as store:
        assert store.counts()["ratings"] == 1


# -- preference files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, match", [
    ('{"prompt": "p", "chosen": "c"', "line 4 is not valid JSON"),
    ('{"prompt": "p", "chosen": "c"}', "line 4 has no string rejected"),
    ('{"prompt": "p", "chosen": [{"role": "assistant", "content": "c"}], "rejected": "r"}',
     "line 4 has no string chosen"),  # TRL's conversational format is not read
    ('["p", "c", "r"]', "line 4 has no string prompt, chosen, rejected"),
])
def test_a_bad_import_line_imports_nothing(store, tmp_path, bad, match):
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    path = tmp_path / "prefs.jsonl"
    path.write_text(f"{good}\n{good}\n\n{bad}\n{good}\n")
    with pytest.raises(GenlabError, match=match) as e:
        import_preferences(store, path)
    assert "\n" not in str(e.value)
    assert store.counts() == {"outputs": 0, "ratings": 0, "comparisons": 0, "pairs": 0}


def test_read_preference_file(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"prompt": "p", "chosen": "c", "rejected": "r", "score_chosen": 5}\n\n')
    assert read_preference_file(path) == [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    with pytest.raises(GenlabError, match="no preference file at"):
        read_preference_file(tmp_path / "missing.jsonl")
