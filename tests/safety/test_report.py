"""genlab report: one self-contained HTML page per run (text, images, music), its creativity-dial sweep, the CLI, and
the page in Debian's headless Chromium with no console errors (skipped without the browser unless
GENLAB_REQUIRE_BROWSER=1, as tests/serve/test_studio.py does)."""

from __future__ import annotations

import base64
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from genlab import api
from genlab.api import report
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.safety.report import build_report

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
TUNES = [
    "X:{i}\nT:t\nM:6/8\nL:1/8\nK:D\n|:A|dfa afd|gfe dcB|AFA dFA|BGE E2A|dfa afd|gfe dcB|AFA Bcd|edc d2:|\n",
    "X:{i}\nT:t\nM:2/4\nL:1/8\nK:G\nGA|B2 BA|G2 GA|B2 d2|e4|d2 BA|G2 E2|D2 EF|G4|]\n",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_corpus, one_thread):
    """A tiny run of each modality, a few seconds of training each: the report reads them, it does not judge them."""
    root = tmp_path_factory.mktemp("runs")
    tunes = root / "tunes"
    tunes.mkdir()
    (tunes / "tunes.abc").write_text("\n".join(TUNES[i % 2].format(i=i) for i in range(40)))
    tiny = dict(n_layer=1, n_head=2, n_embd=32, block_size=64, eval_batches=1, seed=0, quiet=True)
    return {
        "text": api.train(str(small_corpus), family="gpt", out=str(root / "text"), max_steps=20, eval_interval=10,
                          **tiny),
        "images": api.train("images:digits", family="diffusion", conditional=True, out=str(root / "digits"),
                            image_size=8, width=8, time_dim=32, max_steps=2, eval_interval=2, eval_batches=1,
                            quiet=True),
        "gan": api.train("images:digits", family="gan", out=str(root / "gan"), image_size=8, max_steps=2,
                         eval_interval=2, eval_batches=1, quiet=True),
        "music": api.train(str(tunes), family="gpt", out=str(root / "tunes-run"), max_steps=20, eval_interval=20,
                           lr=3e-3, **tiny),
    }


# the sweeps are small: two or three dial values, a few outputs each
SWEEPS = {"text": ([0.7, 1.0, 1.4], 3), "images": ([0.0, 2.0], 8), "gan": ([0.5, 1.0], 8), "music": ([0.8, 1.3], 2)}


@pytest.fixture(scope="module")
def reports(runs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    api.evaluate(runs["text"], max_tokens=2000)  # so the text report has a metrics table
    return {name: report(run, folder / f"{name}.html", sweep=SWEEPS[name][0], num_samples=SWEEPS[name][1],
                         quiet=True) for name, run in runs.items()}


class Page(HTMLParser):
    """What the checks read from a report: headings in order, tags with their attributes, the sweep table's rows."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[int] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))

    def all(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.tags if t == tag]


def check_page(path: Path, dial_values: list[float]) -> tuple[str, Page]:
    """What every report must be: sections, self-contained, accessible, one sweep row per dial value, finite."""
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.all("html")[0].get("lang") == "en"
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert {"summary", "loss", "metrics", "gallery", "dial", "card", "sweep-table"} <= ids
    # headings in order: one h1, then never a level skipped on the way down
    assert page.headings[0] == 1 and page.headings.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(page.headings, page.headings[1:], strict=False))
    # self-contained: no script, nothing fetched from anywhere, every image with its alt text and inlined
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", text, re.I)
    for attrs in page.all("img"):
        assert attrs.get("alt") and attrs["src"].startswith("data:image/")
        base64.b64decode(attrs["src"].split(",", 1)[1], validate=True)
    # the sweep: one row per dial value, each with every figure, all finite where measured
    rows = re.findall(r'<tr data-dial="([^"]+)">(.*?)</tr>', text)
    assert [float(v) for v, _ in rows] == dial_values
    for _, row in rows:
        values = [float(v) for v in re.findall(r'data-value="([^"]+)"', row)]
        assert values and all(math.isfinite(v) for v in values)
    assert 'class="reference"' in text  # held-out real data, measured the same way
    return text, page


def test_text_report(runs, reports):
    text, page = check_page(reports["text"], SWEEPS["text"][0])
    assert "temperature" in text and "perplexity" in text and "distinct 2" in text and "copied 6gram share" in text
    assert text.count('class="text-sample"') == 4  # the gallery: the sampler's gallery_size
    assert "val_loss" in text  # the evaluation's table
    assert "AI-generated" in text
    # the plots are SVG with their glyphs as paths: no font to fetch
    svgs = [base64.b64decode(a["src"].split(",", 1)[1]) for a in page.all("img") if "svg" in a["src"]]
    assert len(svgs) == 3 and all(b"<svg" in s and b"@font-face" not in s for s in svgs)


def test_image_report_sweeps_guidance_and_inlines_a_grid_with_provenance(reports):
    text, page = check_page(reports["images"], SWEEPS["images"][0])
    assert "guidance" in text and "frechet distance" in text and "recall" in text and "near copies" in text
    grids = [a["src"] for a in page.all("img") if a["src"].startswith("data:image/png")]
    assert len(grids) == 1
    png = base64.b64decode(grids[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG") and b"genlab" in png  # the grid carries its provenance in a text chunk


def test_a_model_without_guidance_sweeps_the_scale_of_its_noise(runs, reports, tmp_path):
    text, _ = check_page(reports["gan"], SWEEPS["gan"][0])
    assert "noise_scale" in text and "Not a genlab sample control" in text
    with pytest.raises(GenlabError, match="noise scale must be positive"):
        build_report(runs["gan"], tmp_path / "r.html", sweep=[0.0], quiet=True)


def test_music_report_has_players_and_abc(reports):
    text, page = check_page(reports["music"], SWEEPS["music"][0])
    assert "parse rate" in text and "unique tunes" in text and "copied 8gram share" in text
    players = page.all("audio")
    assert players and all(a["src"].startswith("data:audio/wav;base64,") for a in players)
    assert base64.b64decode(players[0]["src"].split(",", 1)[1])[:4] == b"RIFF"
    assert "K:" in text  # each tune's ABC


def test_sweep_values_are_checked(runs, tmp_path):
    for bad in ([], ["x"], [1.0, 1.0], [float("nan")]):
        with pytest.raises(GenlabError, match="--sweep"):
            build_report(runs["text"], tmp_path / "r.html", sweep=bad, quiet=True)
    with pytest.raises(GenlabError, match="--num-samples"):
        build_report(runs["text"], tmp_path / "r.html", num_samples=1, quiet=True)
    assert not (tmp_path / "r.html").exists()


def test_cli_writes_the_report_and_says_mistakes_in_one_line(runs, tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(runs["text"]), "-o", str(out), "--sweep", "0.8,1.2", "--num-samples", "2",
                 "--seed", "3", "--quiet"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert len(re.findall(r'<tr data-dial="', out.read_text())) == 2
    for argv, message in ((["report", str(tmp_path / "nope"), "-o", str(out)], "does not exist"),
                          (["report", str(runs["text"]), "-o", str(out), "--sweep", "hot,cold"], "--sweep"),
                          (["report", str(runs["text"]), "-o", str(tmp_path)], "is a folder")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("genlab: error:") and message in err and len(err.splitlines()) == 1


def test_reports_open_in_headless_chromium_without_console_errors(reports, tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()] + ([] if webdriver else ["selenium"])
    if missing:
        why = f"the report's browser test needs {' and '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("GENLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GENLAB_REQUIRE_BROWSER=1 but {why}", pytrace=False)
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        for name, path in reports.items():
            driver.get(path.resolve().as_uri())
            # every image decoded and drawn (an inlined file that is broken has no natural width)
            broken = driver.execute_script("return [...document.images].filter(i => !i.complete || !i.naturalWidth)"
                                           ".map(i => i.alt)")
            assert broken == [], name
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert severe == [], f"{name}: {severe}"
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, min(height, 8000))
            shot = tmp_path / f"{name}.png"
            driver.save_screenshot(str(shot))
            assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    finally:
        driver.quit()
