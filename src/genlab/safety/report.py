"""`genlab report RUN -o report.html`: one self-contained HTML file about a run, to look at rather than read.

It holds the run's summary (config.json, trainer_state.json), its loss curves (metrics.jsonl), every evaluation
(metrics.json), a gallery of samples, the creativity dial measured, and the model card. The dial is the sampler's
(Sampler.creativity_dial: temperature for text and music, guidance for a conditional diffusion model): at each
value a fixed-seed batch is made and measured for quality, diversity and originality (Sampler.sweep_point), beside
held-out real data measured the same way (sweep_reference); plotted against the dial and against each other, that is
the model's realism-versus-novelty trade-off as a curve.

Self-contained: plots are SVG and outputs PNG or WAV, inlined as data: URIs; no script, no external URL, and a
Content-Security-Policy that lets the page load nothing but what it carries. Nothing here branches on a family's or
a modality's name: what differs goes through the sampler.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.io import atomic_write_text, read_json

AXES = ("quality", "diversity", "originality")
COLOURS = {"quality": "#1f5fa8", "diversity": "#2a7d3b", "originality": "#b3541e", "real": "#555555"}


def build_report(run: str | os.PathLike, out: str | os.PathLike = "report.html", *, seed: int = 0,
                 sweep: list[float] | None = None, num_samples: int | None = None, device: str = "auto",
                 quiet: bool = False) -> Path:
    """Write the report of `run` to `out` (atomically) and return its path.

    `sweep`: the dial's values (default: the sampler's own, e.g. six temperatures); `num_samples`: outputs per value
    (default: the sampler's, e.g. 8 texts, 64 images, 12 tunes); `seed` fixes the gallery and every sweep batch."""
    from genlab import api
    from genlab.runs import run_info

    started = time.perf_counter()
    out = Path(out)
    if out.is_dir():
        raise GenlabError(f"{out} is a folder; give the report a file name, e.g. -o {out / 'report.html'}")
    if sweep is not None:
        sweep = check_sweep(sweep)
    if num_samples is not None and num_samples < 2:
        raise GenlabError(f"--num-samples must be at least 2 (diversity compares samples), got {num_samples}")
    info = run_info(run)  # a missing folder or a folder that is no run: one line
    run_dir = Path(run)
    config = read_json(run_dir / "config.json")
    say = (lambda _: None) if quiet else (lambda line: print(f"genlab: report: {line}", file=sys.stderr))
    m = api.load(run_dir, device=device)
    say(f"sampling the gallery of {run_dir}")
    sections = [
        ("summary", "The run", summary_html(info)),
        ("loss", "Loss curves", loss_html(run_dir)),
        ("metrics", "Evaluations", evaluations_html(run_dir, config)),
        ("gallery", "Samples", gallery_html(m, run_dir, seed)),
        ("dial", "The creativity dial", dial_html(m, seed, sweep, num_samples, say)),
    ]
    card = run_dir / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        sections.append(("card", "Model card", "<details><summary>The run's model card (README.md)</summary>"
                                               f"<pre>{esc(text)}</pre></details>"))
    page = page_html(info, sections, seed, time.perf_counter() - started)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    say(f"wrote {out} ({len(page) / 1e6:.1f} MB) in {time.perf_counter() - started:.0f}s")
    return out


def check_sweep(values) -> list[float]:
    """The dial's values as numbers: at least one, all finite, none twice."""
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise GenlabError(f"--sweep takes numbers separated by commas, e.g. 0.5,1,1.5; got {values!r}") from None
    if not numbers or not all(math.isfinite(v) for v in numbers):
        raise GenlabError(f"--sweep takes finite numbers separated by commas, e.g. 0.5,1,1.5; got {values!r}")
    if len(set(numbers)) != len(numbers):
        raise GenlabError(f"--sweep names a value twice ({values!r}); give each value once")
    return numbers


def parse_sweep(text: str) -> list[float]:
    """--sweep 0.5,1,1.5 as [0.5, 1.0, 1.5]; anything else is one line."""
    return check_sweep([part.strip() for part in text.split(",") if part.strip()] or [text])


def esc(value: Any) -> str:
    return html.escape(str(value))


def number(value: Any) -> str:
    """A figure as a table shows it; n/a where it could not be measured."""
    from genlab.modalities import plain

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return plain(value)


# ---------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------


def summary_html(info: dict) -> str:
    """The run in a few rows: what it is, what it learned from, how long it trained."""
    from genlab.modalities import plain

    figures, data = info["figures"], info["data"]
    steps = f"{plain(figures.get('step'))} of {plain(figures.get('max_steps'))}"
    seconds = figures.get("training_seconds")
    params = info.get("params")
    rows = [
        ("family", info.get("family")),
        ("modality", info.get("modality")),
        ("data", data.get("source")),
        ("parameters", f"{params:,}" if isinstance(params, int) else params),
        ("model", plain(info.get("model"))),
        ("steps", steps),
        ("best validation loss", figures.get("best_val_loss")),
        ("training time", f"{seconds:.0f} s" if isinstance(seconds, int | float) else None),
        *((f"lineage: {k.replace('_', ' ')}", v) for k, v in info.get("lineage", {}).items()
          if k not in ("data", "data_sha256", "genlab_version")),
    ]
    body = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(number(v))}</td></tr>' for k, v in rows
                   if v is not None)
    problems = "".join(f'<p class="note">{esc(p)}</p>' for p in info.get("problems", []))
    return f'<table class="summary"><caption>{esc(info["name"])} at a glance</caption>{body}</table>{problems}'


def read_curves(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """Every loss in metrics.jsonl as (step, value) points, by name (loss, val_loss, ...); a torn line is skipped."""
    curves: dict[str, list[tuple[float, float]]] = {}
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return curves
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line a kill cut short
        if not isinstance(row, dict) or not isinstance(row.get("step"), int | float):
            continue
        for key, value in row.items():
            if "loss" in key and isinstance(value, int | float) and math.isfinite(value):
                curves.setdefault(key, []).append((float(row["step"]), float(value)))
    return curves


def loss_html(run_dir: Path) -> str:
    curves = read_curves(run_dir)
    if not curves:
        return '<p class="note">No training figures were recorded (metrics.jsonl is missing or empty).</p>'
    fig, ax = new_figure(1, (7.5, 3.6))
    for name, points in sorted(curves.items(), key=lambda kv: kv[0].startswith("val")):
        steps, values = zip(*points, strict=True)
        val = name.startswith("val")
        ax[0].plot(steps, values, label=name.replace("_", " "), marker="o" if val else None, markersize=4,
                   linestyle="--" if val else "-", linewidth=1.6 if val else 1.2)
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("loss")
    ax[0].legend(frameon=False)
    names = ", ".join(name.replace("_", " ") for name in curves)
    last = {name: points[-1][1] for name, points in curves.items()}
    alt = (f"Loss against training step ({names}); last values: "
           + ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in last.items()))
    return img(fig, alt)


def evaluations_html(run_dir: Path, config: dict) -> str:
    """Each evaluation in metrics.json as the modality words it (Modality.format_metrics), as a table."""
    from genlab.modalities import evaluation_header, modality_of_run, read_evaluations

    evaluations = read_evaluations(run_dir, config)
    if not evaluations:
        return (f'<p class="note">Not evaluated yet: <code>genlab eval {esc(run_dir)}</code> measures it and keeps '
                "the figures in metrics.json.</p>")
    modality = modality_of_run(config)
    parts = []
    for key, metrics in evaluations.items():
        rows, notes = [], []
        for line in modality.format_metrics(metrics).splitlines():
            name, sep, rest = line.partition(": ")
            if not sep or " " in name.strip():
                notes.append(line)  # a sentence, not a figure (what was sampled, over how many tokens)
                continue
            value, _, note = rest.partition("  ")
            rows.append(f'<tr><th scope="row">{esc(name)}</th><td>{esc(value.strip())}</td>'
                        f"<td>{esc(note.strip())}</td></tr>")
        head = '<tr><th scope="col">figure</th><th scope="col">value</th><th scope="col">how to read it</th></tr>'
        parts.append(f"<h3>{esc(key)}</h3><p>{esc(evaluation_header(config, metrics))}</p>"
                     + "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
                     + (f'<table class="figures"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
                        if rows else ""))
    return "\n".join(parts)


def gallery_html(m, run_dir: Path, seed: int) -> str:
    """A few outputs at the sampler's default controls, as `genlab sample` makes them, shown by the sampler."""
    outputs = m.generate(num_samples=m.gallery_size, seed=seed)
    return (f"<p>{m.gallery_size} outputs at the model's default controls, seed {seed}: "
            f"<code>genlab sample {esc(run_dir)} --num-samples {m.gallery_size} --seed {seed}</code> makes them "
            "again. Every one is machine-generated.</p>" + m.gallery_html(outputs))


def dial_html(m, seed: int, sweep: list[float] | None, num_samples: int | None, say) -> str:
    """The dial swept: two panels against the dial, the trade-off curve, and every figure as a table."""
    dial = m.creativity_dial()
    if dial is None:
        return '<p class="note">This model has no creativity dial: nothing trades realism for novelty here.</p>'
    values = sweep or list(dial.values)
    n = num_samples or dial.samples
    points = []
    for i, value in enumerate(values):
        say(f"{dial.control} {value:g} ({i + 1} of {len(values)}), {n} samples")
        points.append(m.sweep_point(value, seed, n))
    say(f"held-out real data, {n} samples")
    reference = m.sweep_reference(seed, n)
    headline = {axis: next(iter(points[0][axis]), None) for axis in AXES}
    intro = (f"<p>{esc(dial.about)}</p><p>At each {esc(dial.control)} the model made {n} outputs from seed {seed}; "
             "each batch is measured for quality, diversity and originality"
             + (", beside held-out real data measured the same way (grey)" if reference else "") + ".</p>")
    return (intro + panels_html(dial, values, points, reference, headline)
            + tradeoff_html(dial, values, points, reference, headline)
            + sweep_table_html(dial, values, points, reference) + figures_list_html(dial, points))


def value_of(point: dict | None, axis: str, name: str | None) -> float | None:
    """One figure of a sweep point as a finite float, or None."""
    if point is None or name is None:
        return None
    value = point.get(axis, {}).get(name)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def direction(dial, name: str | None) -> str:
    return "lower is better" if name in dial.lower_is_better else "higher is better"


def panels_html(dial, values, points, reference, headline) -> str:
    """Left: the quality headline against the dial. Right: the diversity and originality headlines (shares)."""
    fig, (left, right) = new_figure(2, (9.5, 3.6))
    panels = ((left, ("quality",)), (right, ("diversity", "originality")))
    described = []
    for ax, axes in panels:
        for axis in axes:
            name = headline[axis]
            ys = [value_of(p, axis, name) for p in points]
            xs = [v for v, y in zip(values, ys, strict=True) if y is not None]
            ys = [y for y in ys if y is not None]
            if not ys:
                continue
            label = f"{axis}: {name.replace('_', ' ')} ({direction(dial, name)})"
            ax.plot(xs, ys, marker="o", color=COLOURS[axis], label=label)
            real = value_of(reference, axis, name)
            if real is not None:
                ax.axhline(real, color=COLOURS[axis], linestyle=":", linewidth=1.2)
                ax.annotate("real data", (xs[-1], real), color=COLOURS["real"], fontsize=8,
                            textcoords="offset points", xytext=(0, 3), ha="right")
            described.append(f"{name.replace('_', ' ')} from {ys[0]:.4g} to {ys[-1]:.4g}")
        ax.set_xlabel(dial.control.replace("_", " "))
        ax.legend(frameon=False, fontsize=8, loc="best")
    left.set_title("quality", fontsize=10)
    right.set_title("diversity and originality", fontsize=10)
    alt = (f"Two panels against {dial.control} from {values[0]:g} to {values[-1]:g}: "
           + "; ".join(described) + ". The table below holds every figure.")
    return f"<h3>Against the dial</h3>{img(fig, alt)}"


def tradeoff_html(dial, values, points, reference, headline) -> str:
    """Quality against diversity, one point per dial value (labelled), the real data as a grey star."""
    q, d = headline["quality"], headline["diversity"]
    pairs = [(v, value_of(p, "diversity", d), value_of(p, "quality", q)) for v, p in zip(values, points, strict=True)]
    pairs = [(v, x, y) for v, x, y in pairs if x is not None and y is not None]
    if not pairs:
        return ""
    fig, (ax,) = new_figure(1, (6.0, 4.4))
    ax.plot([x for _, x, _ in pairs], [y for _, _, y in pairs], marker="o", color=COLOURS["quality"])
    for v, x, y in pairs:
        ax.annotate(f"{v:g}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    real_x, real_y = value_of(reference, "diversity", d), value_of(reference, "quality", q)
    if real_x is not None and real_y is not None:
        ax.plot([real_x], [real_y], marker="*", markersize=14, color=COLOURS["real"], linestyle="none",
                label="held-out real data")
        ax.legend(frameon=False, fontsize=8)
    ax.set_xlabel(f"diversity: {d.replace('_', ' ')} ({direction(dial, d)})")
    ax.set_ylabel(f"quality: {q.replace('_', ' ')} ({direction(dial, q)})")
    if q in dial.lower_is_better:
        ax.invert_yaxis()  # up is better on both axes: the best corner is the top right
    ax.set_title(f"realism against novelty, one point per {dial.control.replace('_', ' ')}", fontsize=10)
    alt = (f"The trade-off curve: {q} against {d}, one point per {dial.control}: "
           + "; ".join(f"{v:g}: {d} {x:.4g}, {q} {y:.4g}" for v, x, y in pairs)
           + (f"; held-out real data: {d} {real_x:.4g}, {q} {real_y:.4g}" if real_x is not None and real_y is not None
              else "") + ".")
    return f"<h3>The trade-off</h3>{img(fig, alt)}"


def sweep_table_html(dial, values, points, reference) -> str:
    """One row per dial value (and the real data's in the foot): every figure, grouped by axis."""
    names = [(axis, name) for axis in AXES for name in points[0][axis]]
    groups = "".join(f'<th scope="colgroup" colspan="{len(points[0][axis])}">{axis}</th>' for axis in AXES
                     if points[0][axis])
    cols = "".join(f'<th scope="col">{esc(name.replace("_", " "))}</th>' for _, name in names)

    def cells(point: dict) -> str:
        out = []
        for axis, name in names:
            raw = point.get(axis, {}).get(name)
            shown = value_of(point, axis, name)
            data = "" if shown is None else f' data-value="{shown!r}"'
            out.append(f'<td data-figure="{esc(name)}"{data}>{esc(number(raw))}</td>')
        return "".join(out)

    body = "".join(f'<tr data-dial="{v!r}"><th scope="row">{v:g}</th>{cells(p)}</tr>'
                   for v, p in zip(values, points, strict=True))
    foot = (f'<tfoot><tr class="reference"><th scope="row">held-out real data</th>{cells(reference)}</tr></tfoot>'
            if reference else "")
    return (f'<h3>Every figure</h3><table class="figures" id="sweep-table"><caption>{esc(dial.control)} sweep: '
            f"{len(values)} values</caption><thead><tr><td></td>{groups}</tr><tr><th scope=\"col\">"
            f"{esc(dial.control.replace('_', ' '))}</th>{cols}</tr></thead><tbody>{body}</tbody>{foot}</table>")


def figures_list_html(dial, points) -> str:
    names = [name for axis in AXES for name in points[0][axis]]
    items = "".join(f"<dt>{esc(name.replace('_', ' '))}</dt><dd>{esc(dial.figures.get(name, ''))}</dd>"
                    for name in names)
    return f'<dl class="figures-list">{items}</dl>'


# ---------------------------------------------------------------------------------------------------------------
# Plots: matplotlib's object API (no pyplot state, no display), SVG inlined
# ---------------------------------------------------------------------------------------------------------------

PLOT_STYLE = {"svg.hashsalt": "genlab", "svg.fonttype": "path", "axes.spines.top": False,
              "axes.spines.right": False, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}


def new_figure(columns: int, size: tuple[float, float]):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(PLOT_STYLE):
        fig = Figure(figsize=size, layout="constrained")
        axes = fig.subplots(1, columns, squeeze=False)[0]
    return fig, list(axes)


def img(fig, alt: str) -> str:
    """A figure as an <img> whose src is its SVG (glyphs as paths: no font to fetch), with its alt text."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(PLOT_STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    width, height = (int(x * 96) for x in fig.get_size_inches())
    uri = "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<figure class="plot"><img src="{uri}" alt="{esc(alt)}" width="{width}" height="{height}"></figure>'


# ---------------------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------------------

CSP = "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'"
CSS = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #4a4a4f; --line: #d8d8de; --tint: #f4f5f8; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff;
       margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
h1 { font-size: 1.9rem; margin: 0 0 .25rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-top: .5rem; border-top: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.lead, .note, figcaption, caption, footer { color: var(--muted); }
nav ul { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; padding: 0; list-style: none; }
a { color: #1a56a0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding-bottom: .25rem; }
th, td { border: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
thead th, tbody th { background: var(--tint); }
td[data-figure], td[data-value] { text-align: right; }
tr.reference { color: var(--muted); font-style: italic; }
pre { background: var(--tint); padding: .75rem 1rem; overflow-x: auto; white-space: pre-wrap;
      word-break: break-word; border-radius: 4px; font-size: .85rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; }
.image-grid img { image-rendering: pixelated; border: 1px solid var(--line); }
.tune audio { width: 100%; max-width: 36rem; display: block; margin-bottom: .5rem; }
.plot img { background: #fff; }
dl.figures-list dt { font-weight: 600; margin-top: .5rem; }
dl.figures-list dd { margin-left: 1.25rem; color: var(--muted); }
"""


def page_html(info: dict, sections: list[tuple[str, str, str]], seed: int, seconds: float) -> str:
    from genlab import __version__

    nav = "".join(f'<li><a href="#{key}">{esc(title)}</a></li>' for key, title, _ in sections)
    body = "\n".join(f'<section id="{key}" aria-labelledby="{key}-h"><h2 id="{key}-h">{esc(title)}</h2>\n{content}'
                     "</section>" for key, title, content in sections)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="genlab {esc(__version__)}">
<link rel="icon" href="data:,">
<title>genlab report: {esc(info['name'])}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{esc(info['name'])}</h1>
<p class="lead">A {esc(info.get('family'))} model of {esc(info.get('modality'))}, trained on
{esc(info['data'].get('source'))}: what it learned, what it makes, and how far its creativity dial trades realism
for novelty.</p>
<nav aria-label="Contents"><ul>{nav}</ul></nav>
</header>
{body}
<footer><p>Made by genlab {esc(__version__)} on {when} in {seconds:.0f} s, seed {seed}:
<code>genlab report {esc(info['path'])} --seed {seed}</code>. The samples in this report are AI-generated.</p></footer>
</main>
</body>
</html>
"""
