"""`genlab list [DIR]` (a table of the runs there, newest first) and `genlab info RUN` (what a run is, how it
was trained, its figures, where it came from, its files and how to use it). Both take --json for scripts.

The API hands both as plain data; this module only lays it out. Every section of `info` is printed
generically as `name: value` lines, so keys a family, a modality or another verb adds show up as they are."""

from __future__ import annotations

import json
import time
from typing import Any


def add_parsers(sub) -> None:
    p = sub.add_parser("list", help="list the runs in a folder (default runs/), newest first")
    p.set_defaults(handler=run_list)
    p.add_argument("dir", nargs="?", default="runs", help="folder of run directories, searched one level deep "
                                                           "(default runs)")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")

    p = sub.add_parser("info", help="show a run: settings, data, figures, lineage, files and how to use it")
    p.set_defaults(handler=run_info)
    p.add_argument("run")
    p.add_argument("--json", action="store_true", help="print everything as JSON")


def run_list(a, argv: list[str]) -> None:
    from genlab import api

    rows = api.list_runs(a.dir)
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        folder = a.dir.rstrip("/") + "/"
        out = "" if a.dir == "runs" else f" --out {folder}NAME"  # genlab train writes into runs/ by default
        print(f"no runs in {folder}; train one with: genlab train text:pydocs{out}")
        return
    print(format_table(rows, time.time()))


def run_info(a, argv: list[str]) -> None:
    from genlab import api

    info = api.info(a.run)
    print(json.dumps(info, indent=2) if a.json else format_info(info))


# ---------------------------------------------------------------------------------------------------
# The list as a table

COLUMNS = ("NAME", "FAMILY", "MODALITY", "DATA", "PARAMS", "SIZE", "STEPS", "BEST LOSS", "LAST USED")
DATA_WIDTH = 28  # a long path as data is cut from the left: its end says most


def format_table(rows: list[dict], now: float) -> str:
    cells = [[r["name"], _text(r["family"]), _text(r["modality"]), _cut(_text(r["data"]), DATA_WIDTH),
              _count(r["params"]), _bytes(r["disk_bytes"]), _steps(r["step"], r["max_steps"]),
              _loss(r["best_val_loss"]), _ago(now - r["modified_ts"]) if r["modified"] else "-"] for r in rows]
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(len(COLUMNS))]
    lines = []
    for row, cell in zip([None, *rows], [list(COLUMNS), *cells], strict=True):
        line = "   ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True))
        if row is not None and row["error"]:
            line += f"   {'broken' if row['family'] is None else 'note'}: {row['error']}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _steps(step: int | None, max_steps: int | None) -> str:
    if step is None:
        return "-"
    return f"{step}/{max_steps}" if max_steps else str(step)


def _loss(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _scaled(value: float, units: tuple[str, ...], sep: str) -> str:
    for unit in units[:-1]:
        if abs(value) < 999.5:
            return f"{value:.1f}{sep}{unit}" if unit != units[0] and abs(value) < 99.95 else f"{value:.0f}{sep}{unit}"
        value /= 1000
    return f"{value:.1f}{sep}{units[-1]}"


def _count(n: Any) -> str:
    """A parameter count as people say it: 17.1K, 1.2M, 7.0B."""
    return _scaled(n, ("", "K", "M", "B", "T"), "") if isinstance(n, int) else "-"


def _bytes(n: Any) -> str:
    """Bytes in decimal units, as `ollama list` shows sizes: 987 B, 69.8 KB, 4.8 MB."""
    return _scaled(n, ("B", "KB", "MB", "GB", "TB"), " ") if isinstance(n, int) else "-"


def _ago(seconds: float) -> str:
    """How long ago, in the largest whole unit: 'just now', '5 minutes ago', '2 hours ago', '3 weeks ago'."""
    if seconds < 2:
        return "just now"  # also a time a little in the future (another machine's clock)
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
                       ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


# ---------------------------------------------------------------------------------------------------
# One run in detail


def format_info(info: dict) -> str:
    fig = info["figures"]
    head = {"family": info["family"], "modality": info["modality"],
            "parameters": f"{_count(info['params'])} ({info['params']})" if info["params"] else None,
            "genlab version": info["genlab_version"], "last used": _ago(time.time() - info["modified_ts"])}
    figures: dict[str, Any] = {}
    if fig["step"] is None:
        figures["trained steps"] = "none yet (no checkpoint)"
    else:
        figures["trained steps"] = f"{fig['step']} of {fig['max_steps']}" if fig["max_steps"] else fig["step"]
        figures["last checkpoint"] = fig["last_checkpoint"]
    if fig["best_val_loss"] is not None:
        figures["best val loss"] = f"{_loss(fig['best_val_loss'])} ({fig['best_checkpoint']})"
    if fig["training_seconds"] is not None:
        figures["training time"] = _duration(fig["training_seconds"])
    measure = next((c["command"] for c in info["commands"] if c["command"].startswith("genlab eval")), "genlab eval")
    figures["evaluations (metrics.json)"] = (f"none yet; measure it with: {measure}"
                                             if fig["evaluation"] is None else fig["evaluation"])
    width = max((len(f["path"]) for f in info["files"]), default=0)
    files = [f"  {f['path'].ljust(width)}   {_bytes(f['bytes']).rjust(8)}"
             + (f"   (same file as {f['same_as']}, counted once)" if "same_as" in f else "") for f in info["files"]]
    commands = [c["command"] for c in info["commands"]]
    cmd_width = max(map(len, commands))
    sections = [
        (f"{info['name']}  ({info['path']})", lines(head)),
        ("Model", lines(info["model"])),
        # unset settings (None) are options of other modalities or defaults chosen elsewhere: noise here
        ("Training", lines({k: v for k, v in info["train"].items() if v is not None})
         + (lines({"distributed": info["distributed"]}) if info["distributed"] else [])
         or ["  none recorded: not trained by genlab (see Lineage)"]),
        ("Data", lines(info["data"])),
        ("Preprocessing", lines(info["preprocessing"]) or ["  none saved"]),
        ("Figures", lines(figures)),
        ("Lineage", lines(info["lineage"])),
        (f"Files ({_bytes(info['disk_bytes'])} on disk)", files),
        ("Use it", [f"  {c['command'].ljust(cmd_width)}   # {c['does']}" for c in info["commands"]]),
    ]
    if info["problems"]:
        sections.append(("Problems", [f"  {p}" for p in info["problems"]]))
    return "\n\n".join("\n".join([title, *body]) for title, body in sections)


def lines(value: Any, indent: int = 2) -> list[str]:
    """Any JSON value as readable `name: value` lines, nested dicts indented below their name."""
    pad = " " * indent
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        value = {str(i + 1): v for i, v in enumerate(value)}  # a list of records: numbered like sections
    if not isinstance(value, dict):
        return [pad + _scalar(value)]
    out = []
    for key, v in value.items():
        if isinstance(v, dict | list) and v and (isinstance(v, dict) or any(isinstance(x, dict | list) for x in v)):
            out.append(f"{pad}{key}:")
            out.extend(lines(v, indent + 2))
        else:
            out.append(f"{pad}{key}: {_scalar(v)}")
    return out


def _scalar(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict | list):
        if not v:
            return "none"
        items = [_scalar(x) for x in v[:10]]
        return ", ".join(items) + (f", … ({len(v)} in all)" if len(v) > 10 else "")
    return str(v) if v != "" else '""'


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
