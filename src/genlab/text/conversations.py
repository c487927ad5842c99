"""Conversations for supervised fine-tuning: a user's JSONL file, checked line by line.

Each line is one conversation in either shape:

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", ...}, {"role": "assistant", ...}]}
    {"prompt": "...", "completion": "..."}          a user message and an assistant message

The first is OpenAI's chat fine-tuning format. A message holds "role" and "content" (a string), and may hold
"name" (a string) and, on an assistant message, "weight": 0 or 1 as OpenAI has it (0: the model does not learn
that reply; it stays as context). Any other key of a message (tool_calls, function_call, ...) is refused by name,
since training cannot honour it; so are tools, functions and parallel_tool_calls beside "messages". Other keys
beside "messages" or "prompt" and "completion" (an "id", a "source") are metadata and ignored.

A system message may only come first: most chat templates (transformers' among them) put it there or refuse it,
and one in the middle is far more often a mistake than a design. Roles need not alternate.

A file whose first character (past whitespace) is "[" is read as one JSON list of such objects instead, whatever
its name; its errors name the item rather than the line. Blank lines are skipped. Every mistake is one
GenlabError naming the file and the 1-based line (or item).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from genlab.errors import GenlabError

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")
UNSUPPORTED = ("tools", "functions", "parallel_tool_calls")  # beside "messages": tool calling is not trained
SHAPES = '{"messages": [{"role": ..., "content": ...}, ...]} or {"prompt": ..., "completion": ...}'


def _kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def validate_conversation(messages: object, where: str = "", need_assistant: bool = False) -> list[dict]:
    """A conversation's messages checked and copied: a non-empty list of objects with known roles, string
    contents, a system message only first, "weight" 0/1 only on assistant messages. `where` prefixes each
    error ("data.jsonl, line 3: "); `need_assistant` asks for an assistant message to learn (weight not 0).
    The server reuses it for a request's messages."""
    if not isinstance(messages, list):
        raise GenlabError(f"{where}messages is {_kind(messages)}, not a list; give a list of "
                          '{"role": ..., "content": ...} objects')
    if not messages:
        raise GenlabError(f"{where}the conversation is empty; give at least one message")
    out = []
    for i, m in enumerate(messages):
        at = f"{where}messages[{i}]"
        if not isinstance(m, dict):
            raise GenlabError(f'{at} is {_kind(m)}, not an object; give {{"role": ..., "content": ...}}')
        unknown = sorted(k for k in m if k not in MESSAGE_KEYS)
        if unknown:
            raise GenlabError(f"{at} has the unknown key {unknown[0]!r}; a message holds only "
                              f"{', '.join(MESSAGE_KEYS)} (tool calls are not supported)")
        role = m.get("role")
        if role not in ROLES:
            shown = "no role" if "role" not in m else f"the unknown role {role!r}"
            raise GenlabError(f"{at} has {shown}; use one of {', '.join(ROLES)}")
        if role == "system" and i > 0:
            raise GenlabError(f"{at} is a system message after the first message; a system message may only "
                              "come first: move it to the start or make it a user message")
        content = m.get("content")
        if not isinstance(content, str):
            raise GenlabError(f"{at} has content that is {_kind(content)}, not a string; give the text as a "
                              "string (lists of content parts are not supported)")
        msg = {"role": role, "content": content}
        if "name" in m:
            if not isinstance(m["name"], str):
                raise GenlabError(f"{at} has a name that is {_kind(m['name'])}, not a string; give a string")
            msg["name"] = m["name"]
        if "weight" in m:
            weight = m["weight"]
            if role != "assistant":
                raise GenlabError(f"{at} is a {role} message with a weight; only assistant messages take one")
            if isinstance(weight, bool) or weight not in (0, 1):
                raise GenlabError(f"{at} has the weight {weight!r}; a weight is 0 (do not learn this reply) or 1")
            msg["weight"] = int(weight)
        out.append(msg)
    if need_assistant and not any(m["role"] == "assistant" and m.get("weight", 1) for m in out):
        raise GenlabError(f"{where}the conversation has no assistant message to learn from (none, or all of weight "
                          "0); add the reply the model should give")
    return out


def conversation_of(obj: object, where: str = "") -> list[dict]:
    """One JSON value of a file, in either shape, as checked messages (see the module docstring)."""
    if not isinstance(obj, dict):
        raise GenlabError(f"{where}it is {_kind(obj)}, not an object; a conversation is {SHAPES}")
    unsupported = [k for k in UNSUPPORTED if k in obj]
    if unsupported:
        raise GenlabError(f"{where}it has {unsupported[0]!r}; tool calling is not supported, leave it out")
    if "messages" in obj:
        if "prompt" in obj or "completion" in obj:
            raise GenlabError(f"{where}it has both messages and prompt/completion; give one shape: {SHAPES}")
        return validate_conversation(obj["messages"], where, need_assistant=True)
    if "prompt" in obj and "completion" in obj:
        for key in ("prompt", "completion"):
            if not isinstance(obj[key], str):
                raise GenlabError(f"{where}its {key} is {_kind(obj[key])}, not a string; give the text as a string")
        return [{"role": "user", "content": obj["prompt"]}, {"role": "assistant", "content": obj["completion"]}]
    keys = ", ".join(sorted(obj)[:5]) or "no keys"
    raise GenlabError(f"{where}it is neither shape (it has {keys}); a conversation is {SHAPES}")


def read_conversations(path: str | os.PathLike) -> list[list[dict]]:
    """Every conversation of a JSONL file (or a JSON list), checked; see the module docstring for the shapes."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GenlabError(f"{path} does not exist; give a JSONL file of conversations") from None
    except IsADirectoryError:
        raise GenlabError(f"{path} is a folder; give a JSONL file of conversations") from None
    except OSError as e:
        raise GenlabError(f"cannot read {path} ({e.strerror or e}); check its permissions") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a byte-order mark, as some editors on Windows write it
    if data.lstrip()[:1] == b"[":
        return _read_json_list(path, data)
    out = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        where = f"{path}, line {n}: "
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GenlabError(f"{where}not UTF-8 text; save the file as UTF-8") from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise GenlabError(f"{where}not valid JSON ({e.msg} at column {e.colno}); each line must be one "
                              f"JSON object, {SHAPES}") from None
        out.append(conversation_of(obj, where))
    if not out:
        raise GenlabError(f"{path} holds no conversations; give one JSON object a line, {SHAPES}")
    return out


def _read_json_list(path: Path, data: bytes) -> list[list[dict]]:
    """A .json-style file: one list of conversation objects."""
    try:
        items = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise GenlabError(f"{path} is not UTF-8 text; save the file as UTF-8") from None
    except json.JSONDecodeError as e:
        raise GenlabError(f"{path}, line {e.lineno}: not valid JSON ({e.msg} at column {e.colno}); fix the file, "
                          "or write one conversation a line (JSONL)") from None
    if not isinstance(items, list):
        raise GenlabError(f"{path} is not a JSON list; give a list of conversations, or one a line (JSONL)")
    out = [conversation_of(obj, f"{path}, item {i}: ") for i, obj in enumerate(items, start=1)]
    if not out:
        raise GenlabError(f"{path} holds no conversations; give a list of {SHAPES}")
    return out
