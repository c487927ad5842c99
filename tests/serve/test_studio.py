"""The studio page (GET /) in a real browser: Debian's headless Chromium driven through selenium, by keyboard only
(Tab, Enter and arrow keys sent to whatever has focus; no clicks), against a real server.

One browser serves the whole module. Without /usr/bin/chromium and /usr/bin/chromedriver (or the selenium package)
these tests skip, saying why, unless GENLAB_REQUIRE_BROWSER=1 (as CI sets it), when they fail instead.
Screenshots go to $GENLAB_ARTIFACTS (default: test-artifacts/ at the repository root).
"""

from __future__ import annotations

import base64
import importlib.resources
import json
import os
import shutil
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from genlab.align.store import FeedbackStore
from tests.serve.conftest import Running

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]
ARENA_MODELS = ("wren", "heron")  # words that appear nowhere else in the page

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # said below: skipped, or failed where a browser is required
    webdriver = None

MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()] + (
    [] if webdriver is not None else ["the selenium package (pip install -e '.[test]')"])
WHY = (f"the studio's browser tests need {' and '.join(MISSING)}; install Debian's browser with "
       "`apt-get install chromium chromium-driver`")
REQUIRED = os.environ.get("GENLAB_REQUIRE_BROWSER") == "1"
if MISSING and not REQUIRED:  # at collection, before the session's servers train their models
    pytest.skip(WHY, allow_module_level=True)


# -- the browser and the servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if MISSING:
        pytest.fail(f"GENLAB_REQUIRE_BROWSER=1 but {WHY}", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def arena_server(served_runs, tmp_path_factory):
    """Two text models (copies of one run, so each has its own folder as the store keeps them), and a store.
    heron streams slowly (a pause per piece), so that a person has time to press Stop."""
    from genlab.serve import create_app, load_models

    root = tmp_path_factory.mktemp("arena")
    runs = [shutil.copytree(served_runs["docs"], root / name) for name in ARENA_MODELS]
    models = load_models(runs)
    fast = models["heron"].stream_samples

    def slow(*args, **kwargs):
        for piece in fast(*args, **kwargs):
            time.sleep(0.01)
            yield piece

    models["heron"].stream_samples = slow
    store = root / "feedback.sqlite"
    running = Running(create_app(models, store=store))
    running.store = store
    yield running
    running.stop()


@pytest.fixture(scope="module")
def artifacts():
    folder = Path(os.environ.get("GENLAB_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- a person at the keyboard ---------------------------------------------------------------------------------


def press(driver, *keys) -> None:
    """Keys into whatever has focus, as a person types them."""
    ActionChains(driver).send_keys(*keys).perform()


def focused_id(driver) -> str:
    return driver.execute_script("return document.activeElement ? document.activeElement.id : ''")


def tab_to(driver, target: str, limit: int = 80, back: bool = False) -> None:
    """Press Tab (Shift+Tab with back) until the element with id `target` has focus: that it is reachable by
    keyboard is part of what is tested."""
    seen = []
    for _ in range(limit):
        now = focused_id(driver)
        if now == target:
            return
        seen.append(now)
        press(driver, *((Keys.SHIFT, Keys.TAB) if back else (Keys.TAB,)))
    raise AssertionError(f"Tab never reached #{target}; focus went through {seen[-12:]}")


def type_into(driver, target: str, text: str, **kwargs) -> None:
    """Tab to a field, select what it holds and type over it."""
    tab_to(driver, target, **kwargs)
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(Keys.DELETE).perform()
    if text:
        press(driver, text)


def choose(driver, target: str, option: str, **kwargs) -> None:
    """Tab to a <select> and type the start of an option, as a person picks from a closed menu."""
    tab_to(driver, target, **kwargs)
    press(driver, option)
    wait(driver, lambda d: d.execute_script(f"return document.getElementById('{target}').value") == option,
         f"#{target} became {option}")


def tab_to_button(driver, text: str, limit: int = 40) -> None:
    """Press Tab until a control whose text is `text` has focus (for the buttons that repeat on each output)."""
    seen = []
    for _ in range(limit):
        press(driver, Keys.TAB)
        now = driver.switch_to.active_element.text
        if now == text:
            return
        seen.append(now or focused_id(driver))
    raise AssertionError(f"Tab never reached a {text!r} button; focus went through {seen[-12:]}")


def wait(driver, condition, what: str, timeout: float = 20):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        raise AssertionError(f"waited {timeout}s for: {what}; status: {status(driver)!r}") from None


def status(driver) -> str:
    return driver.execute_script("return document.getElementById('status').textContent")


def wait_status(driver, start: str, timeout: float = 20) -> str:
    wait(driver, lambda d: status(d).startswith(start), f"a status starting {start!r}", timeout)
    return status(driver)


def value(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').value")


def open_studio(driver, server, hash_: str = "") -> None:
    """The page as a first visit shows it: nothing kept in this browser from an earlier test."""
    driver.get(server.url + "/" + hash_)
    driver.execute_script("localStorage.clear()")
    driver.get(server.url + "/" + hash_)
    wait(driver, lambda d: status(d).endswith("ready."), "the model list")
    driver.execute_script("document.activeElement && document.activeElement.blur()")


def axe_violations(driver) -> list[dict]:
    """axe-core (4.9.1, shipped by selenium-axe-python) run in the page for WCAG 2.0-2.2 A and AA."""
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        source = importlib.resources.files("selenium_axe_python").joinpath("axe-core/axe.min.js").read_text()
        driver.execute_script(source)
    found = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: "tag", values: arguments[0]}})
            .then(r => done(r.violations.map(v => ({id: v.id, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)}))))
            .catch(e => done([{id: "axe-error", help: String(e), nodes: []}]));""", AXE_TAGS)
    return found


def assert_accessible(driver, when: str) -> None:
    violations = axe_violations(driver)
    assert not violations, f"axe found WCAG A/AA problems {when}:\n" + json.dumps(violations, indent=1)


def no_horizontal_scroll(driver) -> bool:
    return driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def screenshot(driver, path: Path) -> None:
    """The whole page, not only the window."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def phone(driver, on: bool) -> None:
    if on:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    else:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def generate_text(driver, prompt: str, max_tokens: int, seed: int | None = None) -> None:
    """From the top of the studio: type the prompt, set the dials, press Generate."""
    type_into(driver, "studio-prompt", prompt)
    type_into(driver, "studio-max-new-tokens", str(max_tokens))
    if seed is not None:
        type_into(driver, "studio-seed", str(seed))
    tab_to(driver, "studio-generate", back=True)
    press(driver, Keys.ENTER)


# -- the tests ------------------------------------------------------------------------------------------------


def test_a_text_streams_into_the_page_piece_by_piece(browser, server):
    open_studio(browser, server)
    assert_accessible(browser, "at load")
    assert value(browser, "studio-model") == "docs"  # the first model, a text one
    browser.execute_script("""  // count the updates of the streamed text: one per piece, not one at the end
        window.pieces = 0;
        new MutationObserver(records => { for (const r of records)
            if (r.target.classList && r.target.classList.contains("generated")) window.pieces++; })
            .observe(document.getElementById("studio-outputs"), {childList: true, subtree: true});""")
    generate_text(browser, "def ", 40, seed=7)
    assert wait_status(browser, "Done") == "Done: 40 tokens."
    shown = browser.find_element(By.CSS_SELECTOR, "#studio-outputs .generated").get_attribute("textContent")
    whole = httpx.post(server.url + "/v1/completions", json={"model": "docs", "prompt": "def ", "max_tokens": 40,
                                                              "temperature": 0.8, "seed": 7}).json()
    assert shown == whole["choices"][0]["text"]  # the pieces, put together, are the whole completion
    assert browser.execute_script("return window.pieces") > 3
    provenance = browser.find_element(By.CSS_SELECTOR, "#studio-outputs .provenance")
    assert "Provenance (seed 7)" in provenance.text and provenance.get_attribute("open") is None
    assert_accessible(browser, "after a generation")

    # Reuse this seed: a new, random-seed output's seed goes back into the Seed field
    type_into(browser, "studio-seed", "", back=True)
    tab_to(browser, "studio-generate", back=True)
    press(browser, Keys.ENTER)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#studio-outputs .card")) == 2
         and status(d).startswith("Done"), "a second output")
    newest = browser.find_element(By.CSS_SELECTOR, "#studio-outputs .card .provenance summary").text
    seed = newest.removeprefix("Provenance (seed ").removesuffix(")")
    tab_to_button(browser, "Reuse this seed")  # past the dials, into the newest card
    press(browser, Keys.ENTER)
    wait(browser, lambda d: value(d, "studio-seed") == seed, f"the seed {seed} in the Seed field")


def generate_four_images(browser) -> None:
    """Two denoising steps (a test's few seconds), then Generate: the grid's default four images."""
    type_into(browser, "studio-steps", "2")
    tab_to(browser, "studio-generate", back=True)
    press(browser, Keys.ENTER)
    assert wait_status(browser, "Done") == "Done: 4 images."


def test_images_come_as_a_grid_of_pngs(browser, server):
    open_studio(browser, server)
    choose(browser, "studio-model", "digits")
    assert browser.find_elements(By.ID, "studio-prompt-field")[0].get_attribute("hidden") is not None
    assert not browser.find_elements(By.ID, "studio-max-new-tokens")  # only the dials the model has
    type_into(browser, "studio-class", "3")
    generate_four_images(browser)
    images = browser.find_elements(By.CSS_SELECTOR, "#studio-outputs .grid img")
    assert len(images) == 4
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 8
               for img in images)
    assert images[0].get_attribute("alt") == "Generated image 1 of 4, class 3"
    assert "steps = 2" in browser.find_element(By.CSS_SELECTOR, "#studio-outputs .provenance").get_attribute(
        "textContent")


def test_stop_ends_a_long_stream_and_frees_the_model(browser, arena_server):
    open_studio(browser, arena_server)
    choose(browser, "studio-model", "heron")
    generate_text(browser, "The ", 2000)
    press(browser, Keys.TAB)  # Generate -> Stop
    assert focused_id(browser) == "studio-stop"
    wait(browser, lambda d: len(d.find_element(By.CSS_SELECTOR, "#studio-outputs .generated").text) > 20,
         "some streamed text")
    press(browser, Keys.ENTER)
    assert wait_status(browser, "Stopped") == "Stopped. What was made so far is kept."
    kept = browser.find_element(By.CSS_SELECTOR, "#studio-outputs .generated").text
    assert "Stopped here." in browser.find_element(By.CSS_SELECTOR, "#studio-outputs .card").text
    assert focused_id(browser) == "studio-stop"  # focus stays where the person left it
    # the server notices the closed stream at its next piece and frees the model
    deadline = time.time() + 10
    while httpx.get(arena_server.url + "/health").json()["models"]["heron"]["queue"] != 0:
        assert time.time() < deadline, "the stopped stream still holds the model"
        time.sleep(0.05)
    time.sleep(0.2)
    assert browser.find_element(By.CSS_SELECTOR, "#studio-outputs .generated").text == kept
    assert len(kept) < 2000  # far from what was asked


def test_a_genlab_png_brings_back_its_settings(browser, server, tmp_path):
    made = httpx.post(server.url + "/v1/images/generations", json={
        "model": "digits", "prompt": "5", "n": 1, "steps": 3, "seed": 4242, "guidance": 2.5}).json()
    png = tmp_path / "made.png"
    png.write_bytes(base64.b64decode(made["data"][0]["b64_json"]))
    open_studio(browser, server)
    assert value(browser, "studio-model") == "docs"
    tab_to(browser, "png-file")
    browser.switch_to.active_element.send_keys(str(png))  # what choosing a file in the dialog gives the input
    assert wait_status(browser, "Settings loaded from made.png").startswith(
        "Settings loaded from made.png: seed 4242, 3 steps.")
    assert value(browser, "studio-model") == "digits"
    assert (value(browser, "studio-seed"), value(browser, "studio-steps"), value(browser, "studio-guidance"),
            value(browser, "studio-class")) == ("4242", "3", "2.5", "5")

    text = tmp_path / "not.png"
    text.write_text("hello")
    browser.switch_to.active_element.send_keys(str(text))
    assert wait_status(browser, "Error:") == "Error: this is not a PNG file; drop a PNG that genlab made"
    assert browser.execute_script("return document.getElementById('status').dataset.kind") == "error"


def test_a_png_dropped_on_the_page_brings_back_its_settings(browser, server):
    made = httpx.post(server.url + "/v1/images/generations", json={
        "model": "digits", "prompt": "7", "n": 1, "steps": 2, "seed": 777}).json()
    open_studio(browser, server)
    # what a drag from the file manager delivers: dragover, then a drop whose DataTransfer holds the file
    browser.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const moved = new DataTransfer();
        moved.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        const zone = document.getElementById("drop-zone");
        zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: moved, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent("drop", { dataTransfer: moved, bubbles: true, cancelable: true }));
    """, made["data"][0]["b64_json"])
    assert wait_status(browser, "Settings loaded from dropped.png").startswith(
        "Settings loaded from dropped.png: seed 777, 2 steps.")
    assert (value(browser, "studio-model"), value(browser, "studio-seed"), value(browser, "studio-class")) == (
        "digits", "777", "7")


def test_history_keeps_settings_and_stays_small(browser, server):
    open_studio(browser, server)
    browser.execute_script("localStorage.removeItem('genlab.history')")
    generate_text(browser, "import ", 8, seed=11)
    wait_status(browser, "Done")
    tab_to(browser, "tab-studio", back=True)
    press(browser, Keys.END)  # the last tab: History
    assert focused_id(browser) == "tab-history"
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#history-list li"), "a history entry")
    entry = browser.find_element(By.CSS_SELECTOR, "#history-list li")
    assert "docs" in entry.text and "seed 11" in entry.text and "import " in entry.text
    tab_to_button(browser, "Use these settings", limit=2)  # into the view: Clear history, then the entry's button
    press(browser, Keys.ENTER)
    wait(browser, lambda d: d.find_element(By.ID, "tab-studio").get_attribute("aria-selected") == "true",
         "the studio shown again")
    assert (value(browser, "studio-prompt"), value(browser, "studio-seed"),
            value(browser, "studio-max-new-tokens")) == ("import ", "11", "8")

    # many large generations later, the history is still capped: entries, characters, and images kept
    kept = browser.execute_script("""
        const png = btoa("x".repeat(30000));
        for (let i = 0; i < 120; i++) historyView.add({time: Date.now(), model: "docs", api: "images", prompt: "",
            values: {}, outputs: [{png, seed: i}, {png, seed: i}, {text: "y".repeat(20000), seed: i}]});
        const text = localStorage.getItem("genlab.history");
        const entries = JSON.parse(text);
        return [text.length, entries.length, entries.filter(e => e.outputs.some(o => o.png)).length,
                entries[0].outputs[0].seed];""")
    assert kept[0] <= 1_000_000 and kept[1] <= 50 and kept[2] <= 3 and kept[3] == 119


def test_arena_vote_is_blind_until_it_reveals_the_models(browser, arena_server):
    open_studio(browser, arena_server)
    assert "wren" in browser.page_source  # the studio's model menu names them...
    tab_to(browser, "tab-studio")
    press(browser, Keys.ARROW_RIGHT)
    press(browser, Keys.ARROW_RIGHT)
    assert focused_id(browser) == "tab-arena"

    def names_shown() -> list[str]:
        text = browser.find_element(By.TAG_NAME, "body").text + browser.page_source
        return [name for name in ARENA_MODELS if name in text]

    assert names_shown() == []  # ...but the arena's page holds no model name
    type_into(browser, "arena-prompt", "The ")
    tab_to(browser, "arena-start")
    press(browser, Keys.ENTER)
    wait_status(browser, "Both answers are in")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#arena-panes .pane pre")) == 2
    assert names_shown() == []
    assert_accessible(browser, "with a battle shown")

    type_into(browser, "vote-reason", "it reads better")
    tab_to_button(browser, "B is better", limit=2)
    press(browser, Keys.ENTER)
    said = wait_status(browser, "Vote kept")
    heading_b = browser.find_element(By.ID, "pane-b-heading").text
    revealed_b = heading_b.removeprefix("Model B: ")
    revealed_a = browser.find_element(By.ID, "pane-a-heading").text.removeprefix("Model A: ")
    assert {revealed_a, revealed_b} == set(ARENA_MODELS) and sorted(names_shown()) == sorted(ARENA_MODELS)
    assert f"B was {revealed_b}" in said
    assert "Seed" in browser.find_element(By.CSS_SELECTOR, "#pane-b .reveal").text
    assert_accessible(browser, "after a vote")

    votes = FeedbackStore(arena_server.store).comparisons()
    assert len(votes) == 1 and votes[0]["reason"] == "it reads better"
    won = votes[0]["model_a"] if votes[0]["winner"] == "a" else votes[0]["model_b"]
    assert Path(won).name == revealed_b  # the vote went to the model that was in pane B

    # a second press changes nothing: the vote is kept once
    press(browser, Keys.ENTER)
    time.sleep(0.2)
    assert len(FeedbackStore(arena_server.store).comparisons()) == 1

    tab_to(browser, "tab-arena", back=True)
    press(browser, Keys.ARROW_RIGHT)
    assert focused_id(browser) == "tab-leaderboard"
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")) == 2, "two ranked models")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]
    assert any(revealed_b in r for r in rows) and all(" to " in r for r in rows)  # the 95% interval
    assert_accessible(browser, "on the leaderboard")


def test_an_arena_battle_between_two_settings_of_one_model(browser, arena_server):
    open_studio(browser, arena_server)
    tab_to(browser, "tab-studio")
    press(browser, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert focused_id(browser) == "tab-arena"
    before = len(FeedbackStore(arena_server.store).comparisons())
    choose(browser, "arena-mode", "settings")
    choose(browser, "arena-model", "wren")
    type_into(browser, "arena-dial-1", "0.3")
    type_into(browser, "arena-dial-2", "1.4")
    type_into(browser, "arena-length", "12")
    tab_to(browser, "arena-start")
    press(browser, Keys.ENTER)
    wait_status(browser, "Both answers are in")
    assert "0.3" not in browser.find_element(By.ID, "arena-panes").text  # which side is which: still hidden
    tab_to_button(browser, "Tie", limit=12)
    press(browser, Keys.ENTER)
    wait_status(browser, "Vote kept")
    revealed = browser.find_element(By.ID, "arena-panes").text
    assert "temperature = 0.3" in revealed and "temperature = 1.4" in revealed
    votes = FeedbackStore(arena_server.store).comparisons()
    assert len(votes) == before + 1 and votes[-1]["winner"] == "tie"
    assert Path(votes[-1]["model_a"]).name == Path(votes[-1]["model_b"]).name == "wren"


def test_the_page_asks_for_the_api_key(browser, models):
    from genlab.serve import create_app

    locked = Running(create_app({"docs": models["docs"]}, api_key="sesame"))
    try:
        browser.get(locked.url + "/")
        browser.execute_script("localStorage.removeItem('genlab.apiKey')")
        browser.get(locked.url + "/")
        wait_status(browser, "Error: missing or wrong API key")
        assert browser.find_element(By.ID, "key-form").is_displayed()
        assert browser.find_element(By.CSS_SELECTOR, "label[for=api-key]").text == "API key"
        type_into(browser, "api-key", "sesame")
        press(browser, Keys.ENTER)
        wait_status(browser, "1 model ready.")
        assert browser.execute_script("return localStorage.getItem('genlab.apiKey')") == '"sesame"'
    finally:
        browser.execute_script("localStorage.removeItem('genlab.apiKey')")
        locked.stop()


def test_the_page_fits_a_desktop_and_a_phone(browser, server, artifacts):
    open_studio(browser, server)
    generate_text(browser, "class ", 60, seed=1)  # seeded throughout: the same page every run
    wait_status(browser, "Done")
    choose(browser, "studio-model", "folk", back=True)
    type_into(browser, "studio-prompt", "M:6/8 K:Dmaj")
    type_into(browser, "studio-max-new-tokens", "40")
    type_into(browser, "studio-seed", "2")
    tab_to(browser, "studio-generate", back=True)
    press(browser, Keys.ENTER)
    assert wait_status(browser, "Done", timeout=60) == "Done: 1 tune."
    assert browser.find_element(By.CSS_SELECTOR, "#studio-outputs audio").get_attribute("src").startswith(
        "data:audio/wav;base64,")
    assert "K:" in browser.find_element(By.CSS_SELECTOR, "#studio-outputs figure pre").text
    assert no_horizontal_scroll(browser)
    assert_accessible(browser, "with music")
    screenshot(browser, artifacts / "studio.png")

    phone(browser, True)
    try:
        open_studio(browser, server)
        generate_text(browser, "while ", 60, seed=3)
        wait_status(browser, "Done")
        browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert no_horizontal_scroll(browser), "the studio scrolls sideways on a phone"
        screenshot(browser, artifacts / "studio-phone.png")
        tab_to(browser, "tab-studio", back=True)
        for tab in ("compare", "arena", "leaderboard", "history"):
            press(browser, Keys.ARROW_RIGHT)
            assert focused_id(browser) == f"tab-{tab}"
            time.sleep(0.05)
            assert no_horizontal_scroll(browser), f"the {tab} view scrolls sideways on a phone"
        assert_accessible(browser, "on a phone")
    finally:
        phone(browser, False)


def test_a_captioned_image_model_takes_a_caption_and_a_negative_prompt(browser, tmp_path_factory):
    from genlab import api
    from genlab.serve import create_app, load_models

    run = api.train("images:digit-scenes", family="diffusion", captions=True, preset="tiny", text_dim=16,
                    text_layers=1, max_steps=2, eval_interval=2, eval_batches=1, batch_size=8,
                    out=str(tmp_path_factory.mktemp("scenes") / "run"), quiet=True)
    running = Running(create_app(load_models([run], names=["scenes"])))
    try:
        open_studio(browser, running)
        choose(browser, "studio-model", "scenes")
        assert browser.find_element(By.ID, "studio-class-field").get_attribute("hidden") is not None
        assert browser.find_element(By.ID, "studio-prompt-label").text == "Caption"
        type_into(browser, "studio-prompt", "a 4 above a 9")
        type_into(browser, "studio-negative-prompt", "a 9 above a 4")
        generate_four_images(browser)
        image = browser.find_element(By.CSS_SELECTOR, "#studio-outputs .grid img")
        assert image.get_attribute("alt") == "Generated image 1 of 4: a 4 above a 9"
        shown = browser.find_element(By.CSS_SELECTOR, "#studio-outputs .provenance").get_attribute("textContent")
        assert "a 9 above a 4" in shown, shown  # the negative prompt is in the provenance
    finally:
        running.stop()
