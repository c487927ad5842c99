"""`genlab report`: one self-contained HTML page about a run (genlab.safety.report)."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("report", help="write one HTML page about a run: curves, samples, figures, the dial",
                       description="Write one self-contained HTML file about a run: its loss curves, every "
                       "evaluation, a gallery of samples, and its creativity dial (temperature or guidance) swept: "
                       "quality, diversity and originality at each value, as plots and a table.")
    p.set_defaults(handler=run)
    p.add_argument("run", metavar="RUN", help="the run directory")
    p.add_argument("-o", "--out", default="report.html", help="the HTML file to write (default: report.html)")
    p.add_argument("--seed", type=int, default=0, help="the seed of the gallery and of every sweep batch (default 0)")
    p.add_argument("--sweep", default=None, metavar="V1,V2,...",
                   help="the dial's values, e.g. 0.5,1,1.5 (default: the model's own, e.g. six temperatures)")
    p.add_argument("--num-samples", type=int, default=None,
                   help="outputs per dial value (default: the model's, e.g. 8 texts, 64 images, 12 tunes)")
    p.add_argument("--device", default="auto", help="auto (default: cuda where there is one), cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(a, argv: list[str]) -> None:
    from genlab.safety.report import build_report, parse_sweep

    sweep = parse_sweep(a.sweep) if a.sweep is not None else None
    path = build_report(a.run, a.out, seed=a.seed, sweep=sweep, num_samples=a.num_samples, device=a.device,
                        quiet=a.quiet)
    print(f"wrote {path}")
