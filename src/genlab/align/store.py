"""The feedback store: what people thought of model outputs, kept in one SQLite file (`feedback.sqlite`).

It holds three tables. `outputs`: every sample shown to a rater, with what made it (run, checkpoint and tokenizer
hashes, modality, prompt, every sampling control with the seed), so that each judgement traces back to the exact
model and can be reproduced. `ratings`: a 1-5 score or a thumbs up/down on one output, with tags and a reason.
`comparisons`: two outputs for one prompt side by side, which one was shown on the left (position bias is real),
and the winner: a, b, a tie or both bad. The a/b winners are the preference pairs that reward models and DPO learn
from; they export as TRL or OpenAI JSONL.

Several raters (studio tabs, CLI sessions, API clients) write at once, and an acknowledged rating must never be
lost. Hence the WAL journal (readers never wait for the writer, and a crash never tears the file),
synchronous=FULL (the WAL is fsynced at every commit: a rating survives a power cut, not only a killed process),
busy_timeout (a second writer waits its turn instead of failing), and one `BEGIN IMMEDIATE ... COMMIT` per write
(the write lock is taken up front, so a transaction never dies half-way for want of it). A method returns only
after its COMMIT succeeded: that return is the acknowledgement.

The schema version lives in `PRAGMA user_version`. MIGRATIONS[i] takes a store from version i to i + 1; the pending
ones run in one transaction, and only on a file already known to be a genlab store. CHECK constraints guard every
enumeration and range, so that not even raw SQL can write a bad row.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError

APPLICATION = "genlab-feedback"  # meta.application: how a genlab store differs from another program's SQLite file
SIDES = ("a", "b")
WINNERS = ("a", "b", "tie", "both_bad")
EXPORT_FORMATS = ("trl", "openai")
BUSY_TIMEOUT_MS = 30_000
SQLITE_HEADER = b"SQLite format 3\x00"
_NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"  # ISO 8601, UTC, milliseconds

_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE outputs (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL DEFAULT {_NOW},
        model TEXT NOT NULL CHECK (model <> ''),
        checkpoint_sha256 TEXT NOT NULL,
        tokenizer_sha256 TEXT,
        modality TEXT NOT NULL CHECK (modality <> ''),
        prompt TEXT NOT NULL DEFAULT '',
        content TEXT,
        file TEXT,
        controls TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(controls) AND json_type(controls) = 'object'),
        seed INTEGER CHECK (seed IS NULL OR typeof(seed) = 'integer'),
        CHECK (content IS NOT NULL OR file IS NOT NULL)
    )""",
    f"""CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        output_id INTEGER NOT NULL REFERENCES outputs (id),
        created_at TEXT NOT NULL DEFAULT {_NOW},
        score INTEGER CHECK (score IS NULL OR (typeof(score) = 'integer' AND score BETWEEN 1 AND 5)),
        thumbs INTEGER CHECK (thumbs IS NULL OR (typeof(thumbs) = 'integer' AND thumbs IN (-1, 1))),
        tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
        reason TEXT,
        rater TEXT,
        CHECK ((score IS NULL) <> (thumbs IS NULL))
    )""",
    f"""CREATE TABLE comparisons (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL DEFAULT {_NOW},
        prompt TEXT NOT NULL,
        output_a INTEGER NOT NULL REFERENCES outputs (id),
        output_b INTEGER NOT NULL REFERENCES outputs (id),
        left TEXT NOT NULL CHECK (left IN ('a', 'b')),
        winner TEXT NOT NULL CHECK (winner IN ('a', 'b', 'tie', 'both_bad')),
        rater TEXT,
        latency_s REAL CHECK (latency_s IS NULL OR latency_s >= 0),
        CHECK (output_a <> output_b)
    )""",
    "CREATE INDEX outputs_by_model ON outputs (model, checkpoint_sha256)",
    "CREATE INDEX ratings_by_output ON ratings (output_id)",
    "CREATE INDEX comparisons_by_a ON comparisons (output_a)",
    "CREATE INDEX comparisons_by_b ON comparisons (output_b)",
)


def _create_v1(db: sqlite3.Connection) -> None:
    """Version 1, the first schema, and the marker that makes the file recognisably ours."""
    for statement in _SCHEMA_V1:
        db.execute(statement)
    db.execute("INSERT INTO meta (key, value) VALUES ('application', ?)", (APPLICATION,))


def _comparison_reason_v2(db: sqlite3.Connection) -> None:
    """Version 2: a comparison keeps the rater's reason, as a rating does (the arena asks for one)."""
    db.execute("ALTER TABLE comparisons ADD COLUMN reason TEXT")


# MIGRATIONS[i] takes version i to i + 1. Append to change the schema; never edit a released step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1, _comparison_reason_v2]

_OUTPUT_FIELDS = ("model", "checkpoint_sha256", "tokenizer_sha256", "modality", "prompt", "content", "file",
                  "controls", "seed")
_PAIR_FIELDS = ("model", "checkpoint_sha256", "tokenizer_sha256", "modality", "file", "controls", "content")


class FeedbackStore:
    """One feedback store file, opened from as many processes as you like; one instance may be shared by threads
    (its transactions take turns). create=False refuses a missing file (readers such as export: a typo must not
    make an empty store); readonly=True never writes, not even a migration. A context manager."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self._create = create and not readonly
        self._lock = threading.RLock()
        new = _check_file(self.path, create=self._create)  # before SQLite touches anything
        mode = "ro" if readonly else "rwc" if new else "rw"
        try:
            self._db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode={mode}", uri=True,
                                       isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise _explain(self.path, e) from None
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        with _sqlite_errors(self.path):
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA synchronous = FULL")
            if self.readonly:
                self._db.execute("PRAGMA query_only = ON")
        with self._transaction(write=False) as db:
            version = self._inspect()
            problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            raise _corrupted(self.path, _one_line(problem))
        if version < len(MIGRATIONS):
            if self.readonly:
                raise GenlabError(f"{self.path} is at schema {version} and this genlab needs {len(MIGRATIONS)}; "
                                  "open it once for writing (e.g. genlab rate) to upgrade it")
            self._migrate()
        if not self.readonly:  # only now, on a file known to be ours: switching to WAL writes its header
            with _sqlite_errors(self.path):
                journal = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if journal != "wal":
                raise GenlabError(f"{self.path} cannot keep a write-ahead log (journal mode stays {journal}); "
                                  "keep the feedback store on a local disk")

    def _inspect(self) -> int:
        """The schema version of a genlab store, 0 for an empty database; anything else is refused."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = [row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if not tables and version == 0:
            if not self._create:
                raise GenlabError(f"no feedback store at {self.path}; collect ratings first with genlab rate RUN")
            return 0
        marker = None
        if "meta" in tables:
            with suppress(sqlite3.OperationalError):  # another program's meta table, without our columns
                marker = self._db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        if marker != (APPLICATION,) or version < 1:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "") or "none"
            raise GenlabError(f"{self.path} is an SQLite database of another program (tables: {shown}); genlab will "
                              "not write into it: give a new file name for the feedback store")
        if version > len(MIGRATIONS):
            raise GenlabError(f"{self.path} was written by a newer genlab (schema {version}, this one reads up to "
                              f"{len(MIGRATIONS)}); upgrade genlab")
        return version

    def _migrate(self) -> None:
        """Bring the store up to this code's schema in one transaction: a failure leaves it as it was."""
        target = len(MIGRATIONS)
        with self._transaction() as db:
            version = self._inspect()  # again, under the write lock: another process may have just done it
            if version == target:
                return
            for step in range(version, target):
                try:
                    MIGRATIONS[step](db)
                except Exception as e:
                    raise GenlabError(f"cannot upgrade {self.path} from schema {version} to {target} "
                                      f"({_first_line(e)}); it is left at schema {version}, unchanged") from e
            db.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction, committed when the block ends and rolled back on any error. Writes BEGIN IMMEDIATE
        (the write lock up front); reads BEGIN, so that several queries see one snapshot."""
        if write and self.readonly:
            raise GenlabError(f"{self.path} was opened readonly; open it without readonly=True to add feedback")
        with self._lock, _sqlite_errors(self.path):
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes: each one transaction, acknowledged by returning -------------------------------------------------

    def add_output(self, *, model: str, checkpoint_sha256: str, modality: str, prompt: str = "",
                   content: str | None = None, file: str | os.PathLike[str] | None = None,
                   controls: dict[str, Any] | None = None, seed: int | None = None,
                   tokenizer_sha256: str | None = None) -> int:
        """Keep one output shown to a rater with all it takes to trace it back and make it again; its id."""
        row = _output_row(model=model, checkpoint_sha256=checkpoint_sha256, modality=modality, prompt=prompt,
                          content=content, file=file, controls=controls, seed=seed, tokenizer_sha256=tokenizer_sha256)
        with self._transaction() as db:
            output_id = _insert_output(db, row)
        return output_id

    def add_rating(self, output_id: int, *, score: int | None = None, thumbs: int | None = None,
                   tags: Iterable[str] = (), reason: str | None = None, rater: str | None = None) -> int:
        """Keep one person's judgement of one output: a score from 1 to 5 or thumbs up (+1) / down (-1); its id."""
        values = _rating_values(score, thumbs, tags, reason, rater)
        _need_id("output_id", output_id)
        with self._transaction() as db:
            self._need_output(db, output_id)
            rating_id = _insert_rating(db, output_id, values)
        return rating_id

    def record_rating(self, output: dict[str, Any], *, score: int | None = None, thumbs: int | None = None,
                      tags: Iterable[str] = (), reason: str | None = None,
                      rater: str | None = None) -> tuple[int, int]:
        """Keep a new output (a dict of add_output's keyword arguments) and one rating of it in one transaction:
        never a rating without its output, nor an orphan output. Returns (output id, rating id)."""
        row = _output_row(**_output_keywords("output", output))
        values = _rating_values(score, thumbs, tags, reason, rater)
        with self._transaction() as db:
            output_id = _insert_output(db, row)
            rating_id = _insert_rating(db, output_id, values)
        return output_id, rating_id

    def add_comparison(self, *, prompt: str, output_a: int, output_b: int, left: str, winner: str,
                       rater: str | None = None, latency_s: float | None = None, reason: str | None = None) -> int:
        """Keep one side-by-side judgement of two outputs already in the store; its id."""
        _need_id("output_a", output_a)
        _need_id("output_b", output_b)
        values = _comparison_values(prompt, left, winner, rater, latency_s, reason)
        if output_a == output_b:
            raise GenlabError(f"output_a and output_b are both {output_a}; compare two different outputs")
        with self._transaction() as db:
            self._need_output(db, output_a)
            self._need_output(db, output_b)
            comparison_id = _insert_comparison(db, output_a, output_b, values)
        return comparison_id

    def record_comparison(self, *, output_a: dict[str, Any], output_b: dict[str, Any], prompt: str, left: str,
                          winner: str, rater: str | None = None, latency_s: float | None = None,
                          reason: str | None = None) -> tuple[int, int, int]:
        """Keep two new outputs (dicts of add_output's keyword arguments; prompt defaults to the comparison's) and
        the judgement between them in one transaction: never a comparison without its outputs, nor orphan outputs.
        Returns (output_a id, output_b id, comparison id)."""
        rows = [_output_row(**{"prompt": prompt, **_output_keywords(name, d)})
                for name, d in (("output_a", output_a), ("output_b", output_b))]
        values = _comparison_values(prompt, left, winner, rater, latency_s, reason)
        with self._transaction() as db:
            a, b = (_insert_output(db, row) for row in rows)
            comparison_id = _insert_comparison(db, a, b, values)
        return a, b, comparison_id

    def _need_output(self, db: sqlite3.Connection, output_id: int) -> None:
        if db.execute("SELECT 1 FROM outputs WHERE id = ?", (output_id,)).fetchone() is None:
            raise GenlabError(f"no output {output_id} in {self.path}; add it with add_output first")

    # -- reads ---------------------------------------------------------------------------------------------------

    def preference_pairs(self, *, model: str | None = None, checkpoint_sha256: str | None = None) -> list[dict]:
        """The comparisons with a winner (a or b; ties and both-bad carry no preference), oldest first, as
        prompt/chosen/rejected plus where each side came from (chosen_model, rejected_controls, ...). A file-backed
        output (an image) gives its file path as its content. With filters, the pairs where either output came
        from that model and/or checkpoint."""
        columns = ", ".join(f"{side}.{field}" for side in "ab" for field in _PAIR_FIELDS)
        sql = f"""SELECT c.id, c.prompt, c.winner, {columns}
            FROM comparisons c JOIN outputs a ON a.id = c.output_a JOIN outputs b ON b.id = c.output_b
            WHERE c.winner IN ('a', 'b')
              AND ((:model IS NULL OR a.model = :model) AND (:sha IS NULL OR a.checkpoint_sha256 = :sha)
                OR (:model IS NULL OR b.model = :model) AND (:sha IS NULL OR b.checkpoint_sha256 = :sha))
            ORDER BY c.id"""
        with self._transaction(write=False) as db:
            rows = db.execute(sql, {"model": model, "sha": checkpoint_sha256}).fetchall()
        n = len(_PAIR_FIELDS)
        pairs = []
        for comparison_id, prompt, winner, *sides in rows:
            a, b = dict(zip(_PAIR_FIELDS, sides[:n], strict=True)), dict(zip(_PAIR_FIELDS, sides[n:], strict=True))
            pair: dict[str, Any] = {"comparison_id": comparison_id, "prompt": prompt}
            for role, side in zip(("chosen", "rejected"), (a, b) if winner == "a" else (b, a), strict=True):
                content = side.pop("content")
                pair[role] = content if content is not None else side["file"]
                side["controls"] = json.loads(side["controls"])
                pair.update({f"{role}_{field}": value for field, value in side.items()})
            pairs.append(pair)
        return pairs

    def comparisons(self, *, modality: str | None = None) -> list[dict]:
        """Every comparison, oldest first, with the model (and checkpoint) of each side: what a leaderboard is
        computed from. With modality, only those whose two outputs are of that modality."""
        sql = """SELECT c.id, c.winner, c.left, c.rater, c.reason, c.latency_s, a.model, a.checkpoint_sha256, b.model,
                b.checkpoint_sha256, a.modality
            FROM comparisons c JOIN outputs a ON a.id = c.output_a JOIN outputs b ON b.id = c.output_b
            WHERE :modality IS NULL OR (a.modality = :modality AND b.modality = :modality)
            ORDER BY c.id"""
        with self._transaction(write=False) as db:
            rows = db.execute(sql, {"modality": modality}).fetchall()
        keys = ("comparison_id", "winner", "left", "rater", "reason", "latency_s", "model_a", "checkpoint_a", "model_b",
                "checkpoint_b", "modality")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def counts(self) -> dict[str, int]:
        """How much feedback there is: outputs, ratings, comparisons, and pairs (comparisons with an a/b winner)."""
        with self._transaction(write=False) as db:
            row = db.execute("""SELECT (SELECT COUNT(*) FROM outputs), (SELECT COUNT(*) FROM ratings),
                (SELECT COUNT(*) FROM comparisons), (SELECT COUNT(*) FROM comparisons WHERE winner IN ('a', 'b'))
            """).fetchone()
        return dict(zip(("outputs", "ratings", "comparisons", "pairs"), row, strict=True))

    def models(self) -> list[dict]:
        """Each (model, checkpoint_sha256, modality) with outputs in the store, its number of outputs and of pairs
        it took part in: what there is to train a reward model or DPO on."""
        with self._transaction(write=False) as db:
            rows = db.execute("""
                WITH sides AS (
                    SELECT c.id, o.model, o.checkpoint_sha256, o.modality FROM comparisons c
                        JOIN outputs o ON o.id = c.output_a WHERE c.winner IN ('a', 'b')
                    UNION  -- not ALL: a pair between two outputs of one model counts once
                    SELECT c.id, o.model, o.checkpoint_sha256, o.modality FROM comparisons c
                        JOIN outputs o ON o.id = c.output_b WHERE c.winner IN ('a', 'b')
                ), groups AS (
                    SELECT model, checkpoint_sha256, modality, COUNT(*) AS outputs FROM outputs
                    GROUP BY model, checkpoint_sha256, modality
                )
                SELECT g.model, g.checkpoint_sha256, g.modality, g.outputs, COUNT(s.id)
                FROM groups g LEFT JOIN sides s USING (model, checkpoint_sha256, modality)
                GROUP BY g.model, g.checkpoint_sha256, g.modality
                ORDER BY g.model, g.checkpoint_sha256, g.modality""").fetchall()
        keys = ("model", "checkpoint_sha256", "modality", "outputs", "pairs")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def check_integrity(self) -> str:
        """The thorough check (every page, every index, every reference): "ok", or the first problem found."""
        with self._lock:
            try:
                problem = self._db.execute("PRAGMA integrity_check(1)").fetchone()[0]
                if problem == "ok" and (orphan := self._db.execute("PRAGMA foreign_key_check").fetchone()):
                    problem = f"row {orphan[1]} of {orphan[0]} refers to a missing row of {orphan[2]}"
                return _one_line(problem)
            except sqlite3.ProgrammingError:  # a closed store: a bug, not a finding
                raise
            except sqlite3.DatabaseError as e:
                return _first_line(e)


# -- preference files -------------------------------------------------------------------------------------------


def export_preferences(store: FeedbackStore, path: str | os.PathLike[str], format: str = "trl",
                       **filters: str | None) -> int:
    """Write the store's preference pairs as JSONL, for TRL ("trl": prompt/chosen/rejected strings) or OpenAI's
    preference fine-tuning ("openai"); filters as for preference_pairs. Atomic (temporary file, fsync, rename):
    a crash leaves the old file or the new one, never half of one. Returns the number of rows written."""
    _need_choice("format", format, EXPORT_FORMATS)
    path = Path(path).expanduser()
    if path.is_dir():
        raise GenlabError(f"{path} is a folder; give the export's file name, e.g. {path / 'preferences.jsonl'}")
    lines = []
    for pair in store.preference_pairs(**filters):
        prompt, chosen, rejected = pair["prompt"], pair["chosen"], pair["rejected"]
        if format == "trl":
            row: dict[str, Any] = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        else:
            row = {"input": {"messages": [{"role": "user", "content": prompt}]},
                   "preferred_output": [{"role": "assistant", "content": chosen}],
                   "non_preferred_output": [{"role": "assistant", "content": rejected}]}
        # U+2028/U+2029 escaped: str.splitlines() would cut a row there
        lines.append(json.dumps(row, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    from genlab.io import atomic_write_text  # here, not at the top: genlab.io loads torch, rater processes need not

    try:
        atomic_write_text(path, "".join(line + "\n" for line in lines))
    except OSError as e:
        raise GenlabError(f"cannot write {path} ({e.strerror or e}); free some space or fix its permissions") from None
    return len(lines)


def import_preferences(store: FeedbackStore, path: str | os.PathLike[str], *, model: str = "imported",
                       checkpoint_sha256: str = "", modality: str = "text") -> int:
    """Add the pairs of a TRL JSONL file as comparisons (chosen as output a, the winner), all in one transaction:
    a bad line anywhere imports nothing. Returns the number of pairs imported."""
    source = {"model": model, "checkpoint_sha256": checkpoint_sha256, "modality": modality}
    _output_row(**source, content="")  # a bad model or modality fails before the file is read
    pairs = read_preference_file(path)
    with store._transaction() as db:
        for pair in pairs:
            a, b = (_insert_output(db, _output_row(**source, prompt=pair["prompt"], content=pair[role]))
                    for role in ("chosen", "rejected"))
            _insert_comparison(db, a, b, (pair["prompt"], "a", "a", None, None, None))
    return len(pairs)


def read_preference_file(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a JSONL file in TRL's standard preference format, {"prompt", "chosen", "rejected"} strings, to
    train from a file without a store. Blank lines are skipped; any other bad line is an error naming it."""
    path = Path(path).expanduser()
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    rows.append(_preference_row(line, f"{path}, line {number}"))
    except FileNotFoundError:
        raise GenlabError(f"no preference file at {path}; check the path, or export one with genlab feedback") from None
    except UnicodeDecodeError:
        raise GenlabError(f"{path} is not UTF-8 text; save it as UTF-8 JSONL") from None
    except OSError as e:
        raise GenlabError(f"cannot read {path} ({e.strerror or e}); give the path of a JSONL file") from None
    return rows


def _preference_row(line: str, where: str) -> dict[str, str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise GenlabError(f"{where} is not valid JSON ({e.msg}, column {e.colno}); fix or delete that line") from None
    keys = ("prompt", "chosen", "rejected")
    bad = [key for key in keys if not isinstance(row, dict) or not isinstance(row.get(key), str)]
    if bad:
        raise GenlabError(f"{where} has no string {', '.join(bad)}; each line must be TRL's standard preference "
                          'format, {"prompt": "...", "chosen": "...", "rejected": "..."}')
    return {key: row[key] for key in keys}


# -- checks and rows --------------------------------------------------------------------------------------------


def _check_file(path: Path, *, create: bool) -> bool:
    """Refuse what cannot be a feedback store before SQLite opens it (SQLite would happily create or convert it).
    True for a new store: no file yet, or an empty one."""
    if path.is_dir():
        raise GenlabError(f"{path} is a folder; give the feedback store's file path, e.g. {path / 'feedback.sqlite'}")
    if not path.parent.is_dir():
        raise GenlabError(f"folder {path.parent} does not exist; create it or choose another path for the store")
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        header = b""
    except OSError as e:
        raise GenlabError(f"cannot read {path} ({e.strerror or e}); fix its permissions") from None
    if not header and not create:
        raise GenlabError(f"no feedback store at {path}; collect ratings first with genlab rate RUN")
    if header and header != SQLITE_HEADER:
        raise GenlabError(f"{path} is not a feedback store (not an SQLite file); give a new file name or the path "
                          "of a genlab feedback store")
    return not header


def _output_row(*, model: str, checkpoint_sha256: str, modality: str, prompt: str = "", content: str | None = None,
                file: str | os.PathLike[str] | None = None, controls: dict[str, Any] | None = None,
                seed: int | None = None, tokenizer_sha256: str | None = None) -> tuple:
    """An outputs row, checked. The seed is kept in both places: its own column and inside controls."""
    _need_text("model", model)
    if not model:
        raise GenlabError("model is empty; give the run directory the output came from")
    _need_text("checkpoint_sha256", checkpoint_sha256)
    _need_text("tokenizer_sha256", tokenizer_sha256, optional=True)
    _need_text("modality", modality)
    if not modality:
        raise GenlabError("modality is empty; give the run's modality (text, music, images, ...)")
    _need_text("prompt", prompt)
    _need_text("content", content, optional=True)
    file = os.fspath(file) if isinstance(file, os.PathLike) else file
    _need_text("file", file, optional=True)
    if content is None and file is None:
        raise GenlabError("an output needs its content (text, ABC) or its file (image, MIDI); pass content= or file=")
    if controls is not None and not isinstance(controls, dict):
        raise GenlabError(f"controls must be a dict of sampling controls, not {type(controls).__name__}")
    controls = dict(controls or {})
    if seed is None:
        seed = controls.get("seed")
    elif controls.setdefault("seed", seed) != seed:
        raise GenlabError(f"seed={seed!r} but controls['seed']={controls['seed']!r}; give the seed once")
    if seed is not None and not (_is_int(seed) and -(2**63) <= seed < 2**63):
        raise GenlabError(f"seed must be a whole number that fits in 64 bits, not {seed!r}")
    try:
        controls_json = json.dumps(controls, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise GenlabError(f"controls must hold JSON values (numbers, strings, lists, dicts): {e}") from None
    return model, checkpoint_sha256, tokenizer_sha256, modality, prompt, content, file, controls_json, seed


def _output_keywords(name: str, d: Any) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise GenlabError(f"{name} must be a dict of add_output's keyword arguments, not {type(d).__name__}")
    unknown = sorted(set(d) - set(_OUTPUT_FIELDS))
    missing = sorted({"model", "checkpoint_sha256", "modality"} - set(d))
    if unknown or missing:
        problem = f"unknown keys {unknown}" if unknown else f"no {', '.join(missing)}"
        raise GenlabError(f"{name} has {problem}; give add_output's keyword arguments (model, checkpoint_sha256, "
                          "modality, content or file, ...)")
    return d


def _rating_values(score: int | None, thumbs: int | None, tags: Iterable[str], reason: str | None,
                   rater: str | None) -> tuple:
    if (score is None) == (thumbs is None):
        raise GenlabError("a rating needs exactly one of score (1 to 5) or thumbs (+1 or -1)")
    if score is not None and not (_is_int(score) and 1 <= score <= 5):
        raise GenlabError(f"score must be a whole number from 1 to 5, not {score!r}")
    if thumbs is not None and not (_is_int(thumbs) and thumbs in (1, -1)):
        raise GenlabError(f"thumbs must be +1 (up) or -1 (down), not {thumbs!r}")
    tags = list(tags) if isinstance(tags, list | tuple | set | frozenset) else tags
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise GenlabError(f"tags must be a list of strings, not {tags!r}; e.g. tags=['funny', 'off-topic']")
    _need_text("reason", reason, optional=True)
    _need_text("rater", rater, optional=True)
    return score, thumbs, json.dumps(tags, ensure_ascii=False), reason, rater


def _insert_rating(db: sqlite3.Connection, output_id: int, values: tuple) -> int:
    return db.execute("INSERT INTO ratings (output_id, score, thumbs, tags, reason, rater) VALUES (?, ?, ?, ?, ?, ?)",
                      (output_id, *values)).lastrowid


def _comparison_values(prompt: str, left: str, winner: str, rater: str | None, latency_s: float | None,
                       reason: str | None = None) -> tuple:
    _need_text("prompt", prompt)
    _need_choice("left", left, SIDES)
    _need_choice("winner", winner, WINNERS)
    _need_text("rater", rater, optional=True)
    _need_text("reason", reason, optional=True)
    if latency_s is not None:
        if isinstance(latency_s, bool) or not isinstance(latency_s, int | float) or not math.isfinite(latency_s) \
                or latency_s < 0:
            raise GenlabError(f"latency_s must be a number of seconds, 0 or more, not {latency_s!r}")
        latency_s = float(latency_s)
    return prompt, left, winner, rater, latency_s, reason


def _insert_output(db: sqlite3.Connection, row: tuple) -> int:
    columns = ", ".join(_OUTPUT_FIELDS)
    return db.execute(f"INSERT INTO outputs ({columns}) VALUES ({', '.join('?' * len(row))})", row).lastrowid


def _insert_comparison(db: sqlite3.Connection, output_a: int, output_b: int, values: tuple) -> int:
    prompt, left, winner, rater, latency_s, reason = values
    return db.execute(
        "INSERT INTO comparisons (prompt, output_a, output_b, left, winner, rater, latency_s, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (prompt, output_a, output_b, left, winner, rater, latency_s, reason),
    ).lastrowid


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need_id(name: str, value: object) -> None:
    if not _is_int(value):
        raise GenlabError(f"{name} must be an output id (a whole number from add_output), not {value!r}")


def _need_text(name: str, value: object, *, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise GenlabError(f"{name} must be a string{' or None' if optional else ''}, not {type(value).__name__}")


def _need_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise GenlabError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


# -- sqlite errors as one line ----------------------------------------------------------------------------------


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _one_line(problem: str) -> str:
    """An integrity report on one line: SQLite starts it with "*** in database main ***" and a newline."""
    return " ".join(problem.replace("*** in database main ***", "").split())


def _corrupted(path: Path, detail: str) -> GenlabError:
    return GenlabError(f"{path} is corrupted ({detail}); restore it from a backup, or salvage what is left with: "
                       f"sqlite3 {path} .recover | sqlite3 recovered.sqlite")


def _explain(path: Path, e: sqlite3.Error) -> GenlabError:
    name = getattr(e, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return _corrupted(path, _first_line(e))
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return GenlabError(f"{path} stayed locked by another process for {BUSY_TIMEOUT_MS // 1000} s; try again, "
                           "or stop the process that holds it")
    if name.startswith("SQLITE_FULL"):
        return GenlabError(f"cannot write {path}: the disk is full; free some space and try again")
    if name.startswith("SQLITE_READONLY"):
        return GenlabError(f"cannot write {path} ({_first_line(e)}); fix its permissions, or open it readonly")
    if isinstance(e, sqlite3.IntegrityError):
        return GenlabError(f"{path} refused the row ({_first_line(e)}); fix the value")
    return GenlabError(f"cannot use {path} ({_first_line(e)}); check that it and its folder are readable and writable")


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """SQLite's errors as one-line GenlabErrors; programming errors (a closed store, bad SQL) stay as they are."""
    try:
        yield
    except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.Error as e:
        raise _explain(path, e) from None
