// genlab studio: one page over genlab serve's HTTP API (the same /v1 routes any OpenAI client uses).
// Plain DOM, no framework. Each part below finds its elements once, keeps them, and talks to the server through
// api(). Text is always put into the page as text (textContent, never innerHTML): outputs are untrusted.
"use strict";

// The API lives beside the folder this script is served from (/studio/studio.js -> /), so the page also
// works behind a proxy that mounts the server under a path.
const ROOT = new URL("../", document.currentScript.src);

// ---------------------------------------------------------------------------------------------------------
// Small helpers

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const byId = (id) => document.getElementById(id);
let uid = 0;
const newId = (stem) => `${stem}-${++uid}`;

// localStorage can be full, disabled or hold junk from an older page: every read has a fallback and every
// write says whether it was kept.
const saved = {
  get(key, fallback) {
    try {
      const text = localStorage.getItem("genlab." + key);
      return text === null ? fallback : JSON.parse(text);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem("genlab." + key, JSON.stringify(value));
      return true;
    } catch {
      return false;
    }
  },
  remove(key) {
    try { localStorage.removeItem("genlab." + key); } catch { /* nothing kept, nothing to remove */ }
  },
};

// ---------------------------------------------------------------------------------------------------------
// The status line: the page's one live region, so a screen reader hears each message once, in order.

const statusLine = byId("status");

let pendingMessage = null;

function say(message, kind = "info") {
  // Emptied first, so that the same message twice in a row ("Done: 16 tokens.") is announced twice; a newer
  // message replaces one not yet shown.
  clearTimeout(pendingMessage);
  statusLine.textContent = "";
  statusLine.dataset.kind = kind;
  pendingMessage = setTimeout(() => { statusLine.textContent = message; }, 30);
}

function sayError(error) {
  if (error.name === "AbortError") return;
  say("Error: " + error.message, "error");
}

// ---------------------------------------------------------------------------------------------------------
// The server. Errors come in OpenAI's shape, {"error": {"message", ...}}: the message is what the person sees.

class ServerError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", json, bytes, signal } = {}) {
  const headers = {};
  const key = saved.get("apiKey", "");
  if (key) headers.Authorization = "Bearer " + key;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (bytes !== undefined) {
    headers["Content-Type"] = "image/png";
    body = bytes;
  }
  let response;
  try {
    response = await fetch(new URL(path, ROOT), { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ServerError(`cannot reach the server (${error.message})`, 0);
  }
  if (!response.ok) {
    let message = `the server answered ${response.status} ${response.statusText}`;
    try {
      const answer = await response.json();
      if (answer && answer.error && answer.error.message) message = answer.error.message;
    } catch { /* not JSON: keep the status line */ }
    if (response.status === 401) keyForm.show();
    throw new ServerError(message, response.status);
  }
  return response;
}

// A streamed completion: server-sent events, one JSON chunk per `data:` line, ending with `data: [DONE]`.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ServerError(chunk.error.message, 200); // an error after the headers were sent
      yield chunk;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The API key, asked for only when the server wants one (a 401), and kept in this browser.

const keyForm = {
  form: byId("key-form"),
  input: byId("api-key"),
  show() {
    this.form.hidden = false;
  },
  start() {
    if (saved.get("apiKey", "")) this.show();
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      saved.set("apiKey", this.input.value.trim());
      this.input.value = "";
      say("The key is saved in this browser. Loading the models…", "busy");
      loadModels();
    });
    byId("forget-key").addEventListener("click", () => {
      saved.remove("apiKey");
      say("The key is forgotten.");
    });
  },
};

// ---------------------------------------------------------------------------------------------------------
// Tabs: an ARIA tablist. Arrow keys, Home and End move between tabs (and show them); Tab moves into the view.
// Only the shown view's contents are in the document: the others are kept aside, so the arena's page holds no
// model name (not even in a hidden menu) until a vote reveals them.

const tabs = [...document.querySelectorAll('[role="tab"]')];
const panelOf = (tab) => byId(tab.getAttribute("aria-controls"));
const setAside = new Map(); // panel -> a fragment holding its contents while it is not shown
const onShow = {};          // tab id -> what to refresh when it is shown

function showTab(tab, { focus = false } = {}) {
  for (const other of tabs) {
    const selected = other === tab;
    const panel = panelOf(other);
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    panel.hidden = !selected;
    if (selected && setAside.has(panel)) {
      panel.append(setAside.get(panel));
      setAside.delete(panel);
    } else if (!selected && !setAside.has(panel)) {
      const fragment = document.createDocumentFragment();
      fragment.append(...panel.childNodes);
      setAside.set(panel, fragment);
    }
  }
  if (focus) tab.focus();
  history.replaceState(null, "", "#" + tab.id.slice("tab-".length));
  say(""); // a message about another view would be read as if about this one
  if (onShow[tab.id]) onShow[tab.id]();
}

function startTabs() {
  const list = document.querySelector('[role="tablist"]');
  list.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) showTab(tab, { focus: true });
  });
  list.addEventListener("keydown", (event) => {
    const at = tabs.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    showTab(tabs[(to + tabs.length) % tabs.length], { focus: true });
  });
  const wanted = byId("tab-" + location.hash.slice(1));
  showTab(tabs.includes(wanted) ? wanted : tabs[0]);
}

const tabNamed = (name) => byId("tab-" + name);

// ---------------------------------------------------------------------------------------------------------
// Models and their dials. GET /v1/models says, for each model, which API makes its outputs and which dials
// (controls) its sampler takes, with their defaults; a form shows only those.

let models = []; // [{id, modality, api, controls, classes?}]
const API_OF_ENDPOINT = { "/v1/completions": "completions", "/v1/images/generations": "images",
  "/v1/music/generations": "music" };
const MODALITY_NAMES = { text: "Text", images: "Images", music: "Music" };

// Every dial the page knows: the sampler's name (as in `controls`), the request field it is sent as, and the
// APIs whose request bodies take it. A control not listed here (truncate_prompt, interpolate) is not shown.
const TEXT_APIS = ["completions", "music"];
const DIALS = [
  { name: "max_new_tokens", field: "max_tokens", label: "Max tokens", kind: "int", min: 1, apis: TEXT_APIS,
    hint: "The most tokens to add." },
  { name: "temperature", label: "Temperature", kind: "float", min: 0, step: 0.05, apis: TEXT_APIS,
    hint: "0: the likeliest; higher: more varied." },
  { name: "top_k", label: "Top-k", kind: "int", min: 1, apis: TEXT_APIS,
    hint: "The k likeliest only. Empty: off." },
  { name: "top_p", label: "Top-p", kind: "float", min: 0, max: 1, step: 0.05, apis: TEXT_APIS,
    hint: "Likeliest up to this mass. Empty: off." },
  { name: "repetition_penalty", label: "Repetition penalty", kind: "float", min: 0, step: 0.05, apis: TEXT_APIS,
    hint: "Above 1: fewer repeats." },
  { name: "stop", label: "Stop at", kind: "lines", apis: ["completions"], wide: true,
    hint: "One sequence per line; \\n stands for a line break." },
  { name: "negative_prompt", label: "Negative prompt", kind: "text", apis: ["images"], wide: true,
    when: (model) => captioned(model), hint: "A caption guidance steers away from. Empty: none." },
  { name: "steps", label: "Steps", kind: "int", min: 1, apis: ["images"], hint: "Denoising steps. Empty: default." },
  { name: "guidance", label: "Guidance", kind: "float", min: 0, step: 0.1, apis: ["images"],
    hint: "How hard the class or caption steers. Empty: default." },
  { name: "eta", label: "Eta", kind: "float", min: 0, step: 0.1, apis: ["images"], hint: "DDIM noise; 0: none." },
  { name: "sampler", label: "Sampler", kind: "choice", apis: ["images"],
    options: [["", "Model default"], ["ddim", "DDIM"], ["ddpm", "DDPM"]] },
  { name: "weights", label: "Weights", kind: "choice", apis: ["images"],
    options: [["", "Model default"], ["ema", "Averaged (EMA)"], ["raw", "Raw"]] },
  { name: "constraint", label: "Keep to ABC grammar", kind: "bool", apis: ["music"] },
  { name: "num_samples", field: "n", label: "Samples", kind: "int", min: 1, apis: ["completions", "images", "music"],
    hint: "Outputs at once." },
  { name: "seed", label: "Seed", kind: "int", min: 0, max: Number.MAX_SAFE_INTEGER, apis: ["completions", "images", "music"],
    hint: "Same seed, same output. Empty: random." },
];
const DIAL = Object.fromEntries(DIALS.map((dial) => [dial.name, dial]));

const modelNamed = (name) => models.find((m) => m.id === name);
// An image model trained on captions takes any caption as its prompt: the server lists no classes for it (null).
const captioned = (model) => model.api === "images" && model.classes === null;

// The value a dial starts at: the model's default, except that an image grid starts small (image models
// default to 64 samples, for the command line).
function defaultOf(model, dial) {
  const value = model.controls[dial.name];
  if (dial.name === "num_samples" && model.api === "images") return Math.min(value ?? 4, 4);
  return value;
}

// One model's dials in a container, with ids under `prefix`: build() for a model, values() to read them,
// fill() to set some of them.
class Dials {
  constructor(container, prefix) {
    this.container = container;
    this.prefix = prefix;
    this.inputs = new Map(); // dial name -> its input
    this.model = null;
  }

  build(model) {
    this.model = model;
    this.inputs.clear();
    const fields = [];
    for (const dial of DIALS) {
      if (!(dial.name in model.controls) || !dial.apis.includes(model.api)) continue;
      if (dial.when && !dial.when(model)) continue;
      const id = `${this.prefix}-${dial.name.replaceAll("_", "-")}`;
      const hintId = dial.hint ? id + "-hint" : null;
      let input;
      if (dial.kind === "choice") {
        input = h("select", { id }, dial.options.map(([value, text]) => h("option", { value, text })));
      } else if (dial.kind === "bool") {
        input = h("input", { id, type: "checkbox" });
      } else if (dial.kind === "lines") {
        input = h("textarea", { id, rows: 2, spellcheck: "false" });
      } else if (dial.kind === "text") {
        input = h("input", { id, type: "text", autocomplete: "off" });
      } else {
        input = h("input", { id, type: "number", min: dial.min, max: dial.max,
          step: dial.kind === "int" ? 1 : dial.step || "any", inputmode: dial.kind === "int" ? "numeric" : "decimal" });
      }
      if (hintId) input.setAttribute("aria-describedby", hintId);
      const label = h("label", { for: id, text: dial.label });
      const hint = hintId ? h("p", { class: "hint", id: hintId, text: dial.hint }) : null;
      const field = dial.kind === "bool"
        ? h("div", { class: "field check wide" }, input, label, hint)
        : h("div", { class: dial.wide ? "field wide" : "field" }, label, input, hint);
      this.inputs.set(dial.name, input);
      fields.push(field);
    }
    this.container.replaceChildren(...fields);
    this.reset();
  }

  reset() {
    for (const name of this.inputs.keys()) this.set(name, defaultOf(this.model, DIAL[name]));
  }

  set(name, value) {
    const input = this.inputs.get(name);
    if (!input) return false;
    const dial = DIAL[name];
    if (dial.kind === "bool") input.checked = value === undefined || value === null ? true : Boolean(value);
    else if (dial.kind === "lines") {
      input.value = (Array.isArray(value) ? value : value ? [value] : [])
        .map((s) => s.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")).join("\n");
    } else input.value = value === null || value === undefined ? "" : String(value);
    return true;
  }

  fill(values) {
    for (const [name, value] of Object.entries(values || {})) this.set(name, value);
  }

  // The dials as values (null: leave it to the model). A number field holding something that is not a number
  // reads as empty in the browser; the server's own checks answer for values out of range.
  values() {
    const values = {};
    for (const [name, input] of this.inputs) {
      const dial = DIAL[name];
      if (dial.kind === "bool") values[name] = input.checked;
      else if (dial.kind === "lines") {
        const lines = input.value.split("\n").filter((line) => line !== "")
          .map((line) => line.replace(/\\(n|\\)/g, (_, c) => (c === "n" ? "\n" : "\\")));
        values[name] = lines.length ? lines : null;
      } else if (dial.kind === "choice") values[name] = input.value || null;
      else if (dial.kind === "text") values[name] = input.value.trim() || null;
      else values[name] = input.value.trim() === "" ? null : Number(input.value);
    }
    return values;
  }
}

// The request body for one model: its API's field names, only the dials it has and that are set.
function requestBody(model, prompt, values) {
  const body = { model: model.id, prompt };
  for (const [name, value] of Object.entries(values)) {
    if (value === null || value === undefined || !DIAL[name]) continue;
    body[DIAL[name].field || name] = value;
  }
  if (model.api === "completions") Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  if (model.api === "images") body.response_format = "b64_json";
  if (model.api === "music") body.formats = ["abc", "wav"];
  return body;
}

// A model <select>, grouped by modality. The model list lives in script memory; it enters the document only
// inside the views that use it (studio and compare).
function fillModelSelect(select, keep) {
  const groups = {};
  for (const model of models) {
    const modality = MODALITY_NAMES[model.modality] || model.modality;
    groups[modality] = groups[modality] || h("optgroup", { label: modality });
    groups[modality].append(h("option", { value: model.id, text: model.id }));
  }
  select.replaceChildren(...Object.values(groups));
  if (keep && modelNamed(keep)) select.value = keep;
}

async function loadModels() {
  try {
    const answer = await (await api("v1/models")).json();
    models = answer.data.map((card) => ({
      id: card.id,
      modality: card.genlab.modality,
      api: API_OF_ENDPOINT[card.genlab.endpoint] || "completions",
      controls: card.genlab.controls || {},
      classes: card.genlab.classes, // class names of a conditional image model, where the server says them
      family: card.genlab.family,
      context: card.genlab.context,
    }));
    studio.modelsChanged();
    compare.modelsChanged();
    arena.modelsChanged();
    if (!models.length) say("This server serves no models.", "error");
    else say(`${models.length} model${models.length === 1 ? "" : "s"} ready.`, "done");
  } catch (error) {
    sayError(error);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Outputs. A generation is a card: what made it, then each output with its provenance and actions (reuse
// its seed, use its settings, rate it), and a Regenerate button that runs the same request again.

function shortHash(sha) {
  return sha ? sha.slice(0, 12) : "unknown";
}

function describeControls(controls) {
  return Object.entries(controls || {}).filter(([key]) => key !== "prompt")
    .map(([key, value]) => `${key} = ${JSON.stringify(value)}`).join(", ") || "defaults";
}

function provenanceBlock(record) {
  if (!record) return null;
  const rows = [
    ["AI-generated", record.ai_generated === false ? "no" : "yes"],
    ["Model", record.model], ["Family", record.family], ["Trained on", record.data],
    ["Checkpoint", shortHash(record.checkpoint_sha256)], ["Seed", record.seed],
    ["Settings", describeControls(record.controls)], ["Made", record.time], ["By", record.generator],
  ].filter(([, value]) => value !== undefined && value !== null && value !== "");
  return h("details", { class: "provenance" },
    h("summary", { text: `Provenance (seed ${record.seed ?? "unknown"})` }),
    h("dl", {}, rows.map(([key, value]) => [h("dt", { text: key }), h("dd", { text: String(value) })])));
}

// Thumbs up or down for one output, into the server's feedback store.
function rateButtons(outputId) {
  if (!outputId) return null;
  const labelId = newId("rate");
  const group = h("div", { class: "rate", role: "group", "aria-labelledby": labelId },
    h("span", { id: labelId, class: "meta", text: "Rate:" }));
  for (const [thumbs, text] of [[1, "Good"], [-1, "Bad"]]) {
    group.append(h("button", {
      type: "button", class: "small", "aria-pressed": "false", text,
      onclick: async (event) => {
        const button = event.currentTarget;
        try {
          await api("v1/feedback", { method: "POST", json: { output_id: outputId, thumbs } });
          for (const other of group.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other === button));
          say(`Rated ${text.toLowerCase()}. Thank you.`, "done");
        } catch (error) {
          sayError(error);
        }
      },
    }));
  }
  return group;
}

// "Reuse this seed", "Use these settings" and the rating, for an output made with `settings` whose provenance is
// `record`.
function outputActions(settings, record, outputId) {
  const seed = record ? record.seed : null;
  return h("div", { class: "buttons" },
    seed === null || seed === undefined ? null : h("button", {
      type: "button", class: "small", text: "Reuse this seed",
      onclick: () => studio.reuseSeed(seed),
    }),
    h("button", {
      type: "button", class: "small", text: "Use these settings",
      onclick: () => studio.useSettings({ ...settings, values: { ...settings.values, seed: seed ?? settings.values.seed } }),
    }),
    rateButtons(outputId));
}

class Card {
  constructor(list, settings, { rerun } = {}) {
    const headingId = newId("card");
    this.settings = settings;
    this.samples = h("div", { class: "samples" });
    const time = new Date().toLocaleTimeString();
    this.pending = h("p", { class: "meta", text: "Generating…" });
    this.node = h("article", { class: "card", "aria-labelledby": headingId },
      h("header", {},
        h("div", {},
          h("h3", { id: headingId, text: settings.model }),
          h("p", { class: "meta", text: `${time}${settings.prompt ? ` · prompt: ${clip(settings.prompt, 60)}` : ""}` })),
        rerun ? h("button", { type: "button", class: "small", text: "Regenerate", onclick: rerun }) : null),
      this.pending,
      this.samples);
    list.prepend(this.node);
  }

  done() {
    this.pending.remove();
  }
}

function clip(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

function b64Bytes(b64) {
  return Math.floor((b64.length * 3) / 4);
}

// The text pane of one sample: the prompt in a muted colour, then what the model adds, as it streams.
function textPane(prompt) {
  const generated = h("span", { class: "generated" });
  const pre = h("pre", { class: "text-out" }, prompt ? h("span", { class: "prompt", text: prompt }) : null, generated);
  return { pre, generated };
}

function imageFigure(b64, alt, caption) {
  return h("figure", {},
    h("img", { src: "data:image/png;base64," + b64, alt }),
    caption ? h("figcaption", { text: caption }) : null);
}

function tuneFigure(tune, name) {
  return h("figure", {},
    tune.wav_b64 ? h("audio", { controls: true, preload: "metadata", src: "data:audio/wav;base64," + tune.wav_b64,
      "aria-label": name }) : null,
    h("figcaption", { text: tune.error ? `${name}: ${tune.error}` : name }),
    tune.abc ? h("pre", { class: "text-out", text: tune.abc }) : null);
}

// Runs one generation of `settings` ({model, prompt, values}) into a new card in `list`. Resolves to a short
// summary for the status line; rejects with the server's error (or an AbortError when stopped).
async function generate(settings, list, signal) {
  const model = modelNamed(settings.model);
  if (!model) throw new ServerError(`the model ${settings.model} is not served here any more`, 404);
  const card = new Card(list, settings, { rerun: () => studio.rerun(settings, list) });
  const body = requestBody(model, settings.prompt, settings.values);
  const entry = { time: Date.now(), model: model.id, api: model.api, prompt: settings.prompt,
    values: settings.values, outputs: [] };
  try {
    if (model.api === "completions") return await streamText(body, card, settings, entry, signal);
    if (model.api === "images") return await makeImages(body, card, settings, entry, signal);
    return await makeMusic(body, card, settings, entry, signal);
  } finally {
    card.done();
    if (entry.outputs.length) historyView.add(entry);
  }
}

async function streamText(body, card, settings, entry, signal) {
  const panes = new Map(); // choice index -> its pane and what it has so far
  const paneFor = (index) => {
    if (!panes.has(index)) {
      const pane = textPane(settings.prompt);
      const sample = h("div", { class: "sample" }, pane.pre);
      card.samples.append(sample);
      panes.set(index, { ...pane, sample, text: "" });
    }
    return panes.get(index);
  };
  paneFor(0);
  let tokens = null;
  try {
    const response = await api("v1/completions", { method: "POST", json: body, signal });
    for await (const chunk of events(response)) {
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      for (const choice of chunk.choices || []) {
        const pane = paneFor(choice.index);
        if (choice.text) {
          pane.text += choice.text;
          pane.generated.textContent = pane.text;
        }
        if (choice.finish_reason) {
          pane.sample.append(provenanceBlock(choice.provenance),
            outputActions(settings, choice.provenance, choice.output_id));
          entry.outputs.push({ text: pane.text, seed: choice.provenance?.seed, output_id: choice.output_id });
        }
      }
    }
  } catch (error) {
    // What came before a Stop (or an error) stays on the page and in the history, marked as cut short.
    for (const pane of panes.values()) {
      if (pane.sample.querySelector(".provenance")) continue;
      pane.sample.append(h("p", { class: "meta", text: error.name === "AbortError" ? "Stopped here." : "Cut short by an error." }));
      if (pane.text) entry.outputs.push({ text: pane.text, seed: null, stopped: true });
    }
    throw error;
  }
  return tokens === null ? "Done." : `Done: ${tokens} token${tokens === 1 ? "" : "s"}.`;
}

async function makeImages(body, card, settings, entry, signal) {
  const answer = await (await api("v1/images/generations", { method: "POST", json: body, signal })).json();
  const grid = h("ul", { class: "grid" });
  answer.data.forEach((image, i) => {
    const label = image.label ?? image.provenance?.label;
    // what the image was asked to show: its class, or the caption a captioned model drew
    const asked = label !== null && label !== undefined ? `, class ${label}`
      : image.provenance?.prompt ? `: ${image.provenance.prompt}` : "";
    grid.append(h("li", {},
      imageFigure(image.b64_json, `Generated image ${i + 1} of ${answer.data.length}${asked}`, `Image ${i + 1}${asked}`),
      h("div", { class: "links" }, h("a", { href: "data:image/png;base64," + image.b64_json,
        download: `genlab-${image.provenance?.seed ?? "image"}-${i + 1}.png`, text: "Save PNG",
        "aria-label": `Save PNG of image ${i + 1}` })),
      rateButtons(image.output_id)));
    entry.outputs.push({ png: image.b64_json, label, seed: image.provenance?.seed, output_id: image.output_id });
  });
  const record = answer.data[0]?.provenance;
  card.samples.append(h("div", { class: "sample" }, grid, provenanceBlock(record), outputActions(settings, record)));
  return `Done: ${answer.data.length} image${answer.data.length === 1 ? "" : "s"}.`;
}

async function makeMusic(body, card, settings, entry, signal) {
  const answer = await (await api("v1/music/generations", { method: "POST", json: body, signal })).json();
  answer.data.forEach((tune, i) => {
    const name = `Tune ${i + 1}`;
    card.samples.append(h("div", { class: "sample" },
      tuneFigure(tune, name),
      h("div", { class: "links" },
        tune.wav_b64 ? h("a", { href: "data:audio/wav;base64," + tune.wav_b64, download: `genlab-tune-${i + 1}.wav`, text: `Save ${name} as WAV` }) : null,
        tune.abc ? h("a", { href: "data:text/vnd.abc;charset=utf-8," + encodeURIComponent(tune.abc), download: `genlab-tune-${i + 1}.abc`, text: `Save ${name} as ABC` }) : null),
      provenanceBlock(tune.provenance), outputActions(settings, tune.provenance, tune.output_id)));
    entry.outputs.push({ abc: tune.abc, seed: tune.provenance?.seed, output_id: tune.output_id });
  });
  return `Done: ${answer.data.length} tune${answer.data.length === 1 ? "" : "s"}.`;
}

// A Generate button and its Stop button. Both stay focusable (aria-disabled, not disabled) so focus never
// drops to the page when one turns off under the keyboard.
class Runner {
  constructor(generateButton, stopButton) {
    this.generateButton = generateButton;
    this.stopButton = stopButton;
    this.controller = null;
    stopButton.addEventListener("click", () => this.stop());
  }

  get busy() {
    return this.controller !== null;
  }

  async run(work) {
    if (this.busy) return;
    this.controller = new AbortController();
    this.generateButton.setAttribute("aria-disabled", "true");
    this.stopButton.setAttribute("aria-disabled", "false");
    say("Generating…", "busy");
    try {
      say(await work(this.controller.signal), "done");
    } catch (error) {
      if (error.name === "AbortError") say("Stopped. What was made so far is kept.", "done");
      else sayError(error);
    } finally {
      this.controller = null;
      this.generateButton.setAttribute("aria-disabled", "false");
      this.stopButton.setAttribute("aria-disabled", "true");
    }
  }

  stop() {
    // Aborting the fetch closes the stream; the server then stops sampling and frees the model.
    if (this.controller) this.controller.abort();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The studio view: one model, its dials, presets, settings from a PNG, and the outputs.

const studio = {
  form: byId("studio-form"),
  select: byId("studio-model"),
  modelHint: byId("studio-model-hint"),
  prompt: byId("studio-prompt"),
  promptField: byId("studio-prompt-field"),
  promptLabel: byId("studio-prompt-label"),
  classField: byId("studio-class-field"),
  classInput: byId("studio-class"),
  classList: byId("studio-classes"),
  outputs: byId("studio-outputs"),
  empty: byId("studio-empty"),
  dials: new Dials(byId("studio-dials"), "studio"),
  runner: new Runner(byId("studio-generate"), byId("studio-stop")),

  start() {
    this.select.addEventListener("change", () => this.modelChosen());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.generate();
    });
    this.prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.generate();
      }
    });
    presets.start();
    pngSettings.start();
  },

  modelsChanged() {
    fillModelSelect(this.select, saved.get("model", null) || this.select.value);
    this.modelChosen();
  },

  model() {
    return modelNamed(this.select.value);
  },

  // A new model: its own dials at its defaults, and the prompt field its API reads (a class for images).
  modelChosen() {
    const model = this.model();
    if (!model) return;
    saved.set("model", model.id);
    this.dials.build(model);
    const byClass = model.api === "images" && !captioned(model);
    const classes = (byClass && model.classes) || [];
    this.promptField.hidden = byClass;
    this.classField.hidden = !byClass || classes.length === 0;
    this.classList.replaceChildren(...classes.map((name) => h("option", { value: name })));
    this.promptLabel.textContent = { music: "ABC header", images: "Caption" }[model.api] || "Prompt";
    this.prompt.placeholder = { music: "M:6/8 K:Dmaj", images: "a small 3 to the left of a large 7" }[model.api] || "";
    const about = [MODALITY_NAMES[model.modality] || model.modality, model.family,
      model.context ? `context ${model.context} tokens` : null].filter(Boolean).join(", ");
    this.modelHint.textContent = about;
  },

  settings() {
    const model = this.model();
    // the field on show: a caption or text prompt, a class, or nothing (an unconditional image model)
    const prompt = !this.promptField.hidden ? this.prompt.value
      : this.classField.hidden ? "" : this.classInput.value.trim();
    return { model: model.id, prompt, values: this.dials.values() };
  },

  generate() {
    if (!this.model()) {
      say("Error: no model to generate with; the server's model list did not load.", "error");
      return;
    }
    this.rerun(this.settings(), this.outputs);
  },

  rerun(settings, list) {
    const runner = list === this.outputs ? this.runner : compare.runner;
    this.empty.hidden = true;
    runner.run((signal) => generate(settings, list, signal));
  },

  // Settings from an output, the history, a preset or a PNG, back into the form.
  useSettings(settings) {
    if (!modelNamed(settings.model)) {
      say(`Error: ${settings.model} is not served here; its settings cannot be loaded.`, "error");
      return false;
    }
    if (tabs.find((t) => t.getAttribute("aria-selected") === "true") !== tabNamed("studio")) showTab(tabNamed("studio"));
    this.select.value = settings.model;
    this.modelChosen();
    this.dials.fill(settings.values);
    if (!this.promptField.hidden) this.prompt.value = settings.prompt ?? "";
    else this.classInput.value = settings.prompt ?? "";
    say(`Settings loaded into the form${settings.values?.seed != null ? ` (seed ${settings.values.seed})` : ""}.`, "done");
    return true;
  },

  reuseSeed(seed) {
    if (tabs.find((t) => t.getAttribute("aria-selected") === "true") === tabNamed("compare")) {
      compare.reuseSeed(seed);
      return;
    }
    this.dials.set("seed", seed);
    say(`Seed ${seed} is in the Seed field.`, "done");
  },
};

// Presets: the dials saved under a name in this browser, for any model that has the same dials.
const presets = {
  name: byId("preset-name"),
  list: byId("preset-list"),

  start() {
    this.render();
    byId("preset-save").addEventListener("click", () => this.save());
    byId("preset-apply").addEventListener("click", () => this.apply());
    byId("preset-delete").addEventListener("click", () => this.remove());
  },

  all() {
    const kept = saved.get("presets", {});
    return kept && typeof kept === "object" ? kept : {};
  },

  render() {
    const names = Object.keys(this.all()).sort();
    this.list.replaceChildren(...(names.length ? names.map((n) => h("option", { value: n, text: n }))
      : [h("option", { value: "", text: "No presets yet" })]));
  },

  save() {
    const name = this.name.value.trim();
    if (!name) {
      say("Error: give the preset a name first.", "error");
      this.name.focus();
      return;
    }
    const kept = this.all();
    kept[name] = { values: studio.dials.values() };
    if (!saved.set("presets", kept)) {
      say("Error: this browser would not keep the preset (its storage is full or off).", "error");
      return;
    }
    this.render();
    this.list.value = name;
    say(`Preset ${name} saved.`, "done");
  },

  apply() {
    const preset = this.all()[this.list.value];
    if (!preset) {
      say("Error: no preset chosen.", "error");
      return;
    }
    studio.dials.fill(preset.values);
    say(`Preset ${this.list.value} applied to the dials this model has.`, "done");
  },

  remove() {
    const kept = this.all();
    const name = this.list.value;
    if (!(name in kept)) return;
    delete kept[name];
    saved.set("presets", kept);
    this.render();
    say(`Preset ${name} deleted.`, "done");
  },
};

// Settings from a PNG genlab made: its tEXt chunk "genlab" holds the provenance record, read by the server
// (POST /v1/studio/png-info) so the page does not parse PNG chunks itself.
const pngSettings = {
  zone: byId("drop-zone"),
  input: byId("png-file"),
  preview: byId("png-preview"),
  MAX_BYTES: 1 << 20,

  start() {
    this.input.addEventListener("change", () => {
      if (this.input.files[0]) this.load(this.input.files[0]);
    });
    // A file dropped anywhere on the page is read (and never opened by the browser in place of the page).
    document.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault();
      this.zone.classList.add("over");
    });
    document.addEventListener("dragleave", (event) => {
      if (event.relatedTarget === null) this.zone.classList.remove("over");
    });
    document.addEventListener("drop", (event) => {
      if (!event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.zone.classList.remove("over");
      this.load(event.dataTransfer.files[0]);
    });
  },

  async load(file) {
    if (file.size > this.MAX_BYTES) {
      say(`Error: ${file.name} is over 1 MiB; a genlab PNG is much smaller.`, "error");
      return;
    }
    try {
      const answer = await (await api("v1/studio/png-info", { method: "POST", bytes: file })).json();
      const record = answer.settings || {};
      const controls = record.controls || {};
      const values = { seed: record.seed };
      for (const name of Object.keys(DIAL)) if (name in controls) values[name] = controls[name];
      // The image's own class, which the record keeps beside the controls (a batch may mix classes).
      const label = record.label ?? controls.label ?? (record.prompt || null);
      let modelName = record.model;
      if (!modelNamed(modelName)) {
        modelName = studio.select.value;
        if (!modelNamed(modelName)) throw new ServerError("no model is loaded to take these settings", 0);
      }
      const settings = { model: modelName, prompt: label === null || label === undefined ? "" : String(label), values };
      if (!studio.useSettings(settings)) return;
      this.preview.src = URL.createObjectURL(file);
      this.preview.alt = `The PNG the settings came from, ${file.name}`;
      this.preview.hidden = false;
      const note = modelName === record.model ? "" : ` It was made by ${record.model ?? "an unknown model"}, which is not served here; its settings went into ${modelName}'s dials.`;
      say(`Settings loaded from ${file.name}: seed ${record.seed ?? "unknown"}` +
        `${controls.steps != null ? `, ${controls.steps} steps` : ""}.${note}`, "done");
    } catch (error) {
      sayError(error);
    } finally {
      this.input.value = ""; // the same file can be chosen again
    }
  },
};

// ---------------------------------------------------------------------------------------------------------
// Compare: one prompt, two columns, each with its own model and dials (two models, or two settings of one).

const compare = {
  form: byId("compare-form"),
  prompt: byId("compare-prompt"),
  columns: [
    { select: byId("left-model"), dials: new Dials(byId("left-dials"), "left"), outputs: byId("left-outputs") },
    { select: byId("right-model"), dials: new Dials(byId("right-dials"), "right"), outputs: byId("right-outputs") },
  ],
  runner: new Runner(byId("compare-generate"), byId("compare-stop")),

  start() {
    for (const column of this.columns) {
      column.select.addEventListener("change", () => this.chosen(column));
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.generate();
    });
  },

  modelsChanged() {
    this.columns.forEach((column, i) => {
      fillModelSelect(column.select, column.select.value);
      // Start with two different models where there are two of one kind.
      const first = modelNamed(this.columns[0].select.value);
      if (i === 1 && first && !column.select.dataset.touched) {
        const other = models.find((m) => m.api === first.api && m.id !== first.id);
        column.select.value = (other || first).id;
      }
      this.chosen(column, { keepTouched: true });
    });
  },

  chosen(column, { keepTouched = false } = {}) {
    if (!keepTouched) column.select.dataset.touched = "1";
    const model = modelNamed(column.select.value);
    if (model) column.dials.build(model);
  },

  generate() {
    if (!this.columns.every((c) => modelNamed(c.select.value))) {
      say("Error: choose a model for each column.", "error");
      return;
    }
    const settingsOf = (column) => ({ model: column.select.value, prompt: this.prompt.value, values: column.dials.values() });
    this.runner.run(async (signal) => {
      // Both at once: two models answer in parallel; one model twice queues the second behind the first.
      const results = await Promise.allSettled(this.columns.map((c) => generate(settingsOf(c), c.outputs, signal)));
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      const what = (i) => results[i].value.replace(/^Done:? ?/, "").replace(/\.$/, "") || "finished";
      return `Done: left ${what(0)}, right ${what(1)}.`;
    });
  },

  reuseSeed(seed) {
    for (const column of this.columns) column.dials.set("seed", seed);
    say(`Seed ${seed} is in both Seed fields.`, "done");
  },
};

// ---------------------------------------------------------------------------------------------------------
// History: the last generations, kept in localStorage. Text and settings always; image bytes only for the
// newest few, and the whole list is kept under a size cap, so it never fills the browser's quota.

const historyView = {
  list: byId("history-list"),
  empty: byId("history-empty"),
  MAX_ENTRIES: 50,
  IMAGE_ENTRIES: 3,      // entries that keep their PNGs
  IMAGES_PER_ENTRY: 4,
  MAX_TEXT: 8000,        // characters kept per text or tune
  MAX_CHARS: 1_000_000,  // the whole history as JSON; localStorage holds about 5 million

  start() {
    byId("history-clear").addEventListener("click", () => {
      saved.remove("history");
      this.render();
      say("History cleared.", "done");
    });
    onShow["tab-history"] = () => this.render();
  },

  all() {
    const kept = saved.get("history", []);
    return Array.isArray(kept) ? kept : [];
  },

  add(entry) {
    const clipped = {
      ...entry,
      id: `${entry.time}-${Math.random().toString(36).slice(2, 8)}`,
      outputs: entry.outputs.map((o) => ({
        ...o,
        text: o.text === undefined ? undefined : o.text.slice(0, this.MAX_TEXT),
        abc: o.abc === undefined ? undefined : o.abc.slice(0, this.MAX_TEXT),
      })),
    };
    let entries = [clipped, ...this.all()].slice(0, this.MAX_ENTRIES);
    entries = entries.map((e, i) => ({
      ...e,
      outputs: e.outputs.map((o, j) => {
        if (!o.png) return o;
        const keep = i < this.IMAGE_ENTRIES && j < this.IMAGES_PER_ENTRY && b64Bytes(o.png) < 64 * 1024;
        return keep ? o : { ...o, png: undefined };
      }),
    }));
    // Oldest first out until it fits, and again if the browser still refuses (another page shares the quota).
    while (entries.length > 1 && JSON.stringify(entries).length > this.MAX_CHARS) entries.pop();
    while (!saved.set("history", entries) && entries.length > 1) entries.pop();
  },

  remove(id) {
    saved.set("history", this.all().filter((e) => e.id !== id));
    this.render();
    say("Removed from the history.", "done");
  },

  render() {
    const entries = this.all();
    this.empty.hidden = entries.length > 0;
    this.list.replaceChildren(...entries.map((entry) => this.item(entry)));
  },

  item(entry) {
    const headingId = newId("history");
    const seed = entry.outputs.find((o) => o.seed !== null && o.seed !== undefined)?.seed;
    const thumbs = entry.outputs.filter((o) => o.png);
    const texts = entry.outputs.filter((o) => o.text !== undefined || o.abc !== undefined);
    return h("li", { "aria-labelledby": headingId },
      h("h3", { id: headingId, text: `${entry.model}, ${new Date(entry.time).toLocaleString()}` }),
      h("p", { class: "meta", text: [entry.prompt ? `Prompt: ${clip(entry.prompt, 80)}` : null,
        seed !== undefined ? `seed ${seed}` : null, `${entry.outputs.length} output${entry.outputs.length === 1 ? "" : "s"}`]
        .filter(Boolean).join(" · ") }),
      thumbs.length ? h("div", { class: "thumbs" }, thumbs.map((o, i) =>
        h("img", { src: "data:image/png;base64," + o.png, alt: `Image ${i + 1}${o.label != null ? `, class ${o.label}` : ""}` }))) : null,
      texts.slice(0, 2).map((o) => h("pre", { class: "text-out", text: clip((entry.prompt && o.text !== undefined ? entry.prompt : "") + (o.text ?? o.abc), 600) })),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "small", text: "Use these settings",
          onclick: () => studio.useSettings({ model: entry.model, prompt: entry.prompt,
            values: { ...entry.values, seed: seed ?? entry.values?.seed ?? null } }) }),
        h("button", { type: "button", class: "small", text: "Remove", onclick: () => this.remove(entry.id) })));
  },
};

// ---------------------------------------------------------------------------------------------------------
// Arena: a blind battle. The server picks two models and hides which pane is which; the page shows the two
// outputs and nothing else about them until the vote, whose answer reveals each pane's model and settings.

const arena = {
  form: byId("arena-form"),
  apiSelect: byId("arena-api"),
  modeSelect: byId("arena-mode"),
  settingsBox: byId("arena-settings"),
  modelSelect: byId("arena-model"),
  dials: [byId("arena-dial-1"), byId("arena-dial-2")],
  dialLabels: [byId("arena-dial-1-label"), byId("arena-dial-2-label")],
  length: byId("arena-length"),
  lengthLabel: byId("arena-length-label"),
  prompt: byId("arena-prompt"),
  startButton: byId("arena-start"),
  panesBox: byId("arena-panes"),
  panes: { a: byId("pane-a"), b: byId("pane-b") },
  voteForm: byId("vote-form"),
  reason: byId("vote-reason"),
  voteButtons: [...byId("vote-form").querySelectorAll("[data-winner]")],
  battle: null,
  busy: false,

  start() {
    this.apiSelect.addEventListener("change", () => this.kindChosen());
    this.modeSelect.addEventListener("change", () => this.kindChosen());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.fight();
    });
    for (const button of this.voteButtons) button.addEventListener("click", () => this.vote(button.dataset.winner));
    this.kindChosen();
  },

  // Offer only the kinds this server can battle (two models or more); the names stay in script memory.
  modelsChanged() {
    const counts = {};
    for (const model of models) counts[model.api] = (counts[model.api] || 0) + 1;
    const any = Object.values(counts).some((n) => n >= 2); // else all stay, and the server says what is missing
    for (const option of this.apiSelect.options) option.hidden = any && !(counts[option.value] >= 2);
    const first = [...this.apiSelect.options].find((o) => !o.hidden);
    if (first && this.apiSelect.selectedOptions[0]?.hidden) this.apiSelect.value = first.value;
    this.kindChosen();
  },

  // The dial two settings differ in: guidance for images, temperature for text and music.
  dialName() {
    return this.apiSelect.value === "images" ? "guidance" : "temperature";
  },

  kindChosen() {
    const images = this.apiSelect.value === "images";
    this.lengthLabel.textContent = images ? "Steps" : "Max tokens";
    const dial = images ? "Guidance" : "Temperature";
    this.dialLabels[0].textContent = `${dial}, first settings`;
    this.dialLabels[1].textContent = `${dial}, second settings`;
    // Model names enter the arena's page only when the person picks one model to battle with itself: a
    // random pair must stay unnamed.
    const settings = this.modeSelect.value === "settings";
    this.settingsBox.hidden = !settings;
    const keep = this.modelSelect.value;
    this.modelSelect.replaceChildren(...(settings ? models.filter((m) => m.api === this.apiSelect.value)
      .map((m) => h("option", { value: m.id, text: m.id })) : []));
    if (settings && keep) this.modelSelect.value = keep;
  },

  async fight() {
    if (this.busy) return;
    this.busy = true;
    this.startButton.setAttribute("aria-disabled", "true");
    const api_ = this.apiSelect.value;
    const controls = {};
    if (this.length.value.trim() !== "") controls[api_ === "images" ? "steps" : "max_tokens"] = Number(this.length.value);
    say("Two models are answering…", "busy");
    try {
      let body = { prompt: this.prompt.value, api: api_, models: null, controls, controls_b: null };
      if (this.modeSelect.value === "settings") {
        const model = this.modelSelect.value;
        const [first, second] = this.dials.map((input) => ({ ...controls, [this.dialName()]: Number(input.value) }));
        body = { ...body, models: [model, model], controls: first, controls_b: second };
      }
      const answer = await (await api("v1/arena/battles", { method: "POST", json: body })).json();
      this.battle = answer;
      for (const side of ["a", "b"]) this.show(side, answer[side].output, answer.api);
      this.panesBox.hidden = false;
      this.voteForm.hidden = false;
      this.reason.value = "";
      for (const button of this.voteButtons) {
        button.setAttribute("aria-disabled", "false");
        button.setAttribute("aria-pressed", "false");
      }
      say("Both answers are in. Which is better? Vote below to see which models they were.", "done");
    } catch (error) {
      sayError(error);
    } finally {
      this.busy = false;
      this.startButton.setAttribute("aria-disabled", "false");
    }
  },

  show(side, output, kind) {
    const pane = this.panes[side];
    const name = side.toUpperCase();
    pane.querySelector("h3").textContent = `Model ${name}`;
    pane.querySelector(".reveal").replaceChildren();
    const box = pane.querySelector(".pane-output");
    if (kind === "images") {
      const images = output.images || (output.b64_json ? [output] : []); // one image, or a list of them
      box.replaceChildren(h("ul", { class: "grid" }, images.map((image, i) =>
        h("li", {}, imageFigure(image.b64_json, `Image ${i + 1} from model ${name}`, null)))));
    } else if (kind === "music") {
      box.replaceChildren(tuneFigure(output, `Tune from model ${name}`));
    } else {
      box.replaceChildren(h("pre", { class: "text-out" },
        this.battle.prompt ? h("span", { class: "prompt", text: this.battle.prompt }) : null,
        h("span", { text: output.text ?? "" })));
    }
  },

  async vote(winner) {
    if (!this.battle || this.voteButtons[0].getAttribute("aria-disabled") === "true") return;
    const reason = this.reason.value.trim() || null;
    try {
      const answer = await (await api(`v1/arena/battles/${encodeURIComponent(this.battle.id)}/vote`, {
        method: "POST", json: { winner, reason, rater: null } })).json();
      for (const button of this.voteButtons) {
        button.setAttribute("aria-disabled", "true");
        button.setAttribute("aria-pressed", String(button.dataset.winner === winner));
      }
      for (const side of ["a", "b"]) this.reveal(side, answer[side]);
      const verdict = { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both are bad" }[winner];
      say(`Vote kept: ${verdict}. A was ${answer.a.model}; B was ${answer.b.model}. Start another battle when you like.`, "done");
    } catch (error) {
      sayError(error);
    }
  },

  reveal(side, source) {
    const pane = this.panes[side];
    pane.querySelector("h3").textContent = `Model ${side.toUpperCase()}: ${source.model}`;
    pane.querySelector(".reveal").replaceChildren(h("dl", {},
      h("dt", { text: "Model" }), h("dd", { text: source.model }),
      h("dt", { text: "Seed" }), h("dd", { text: String(source.seed ?? "unknown") }),
      h("dt", { text: "Settings" }), h("dd", { text: describeControls(source.controls) }),
      source.provenance?.checkpoint_sha256 ? [h("dt", { text: "Checkpoint" }),
        h("dd", { text: shortHash(source.provenance.checkpoint_sha256) })] : null));
  },
};

// ---------------------------------------------------------------------------------------------------------
// Leaderboard: ratings from the arena's votes, fetched each time the view is shown.

const leaderboard = {
  form: byId("leaderboard-form"),
  apiSelect: byId("leaderboard-api"),
  body: document.querySelector("#leaderboard tbody"),
  caption: byId("leaderboard-caption"),

  start() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.load();
    });
    this.apiSelect.addEventListener("change", () => this.load());
    onShow["tab-leaderboard"] = () => this.load();
  },

  async load() {
    const kind = this.apiSelect.selectedOptions[0].textContent;
    try {
      const answer = await (await api(`v1/leaderboard?modality=${encodeURIComponent(this.apiSelect.value)}`)).json();
      const rows = answer.data || [];
      const round = (x) => (x === null || x === undefined ? "–" : Math.round(x).toString());
      this.caption.textContent = `${kind} models, ${rows.length ? `${rows.length} ranked` : "no votes yet"}`;
      this.body.replaceChildren(...rows.map((row) => h("tr", {},
        h("td", { class: "num", text: String(row.rank) }), h("th", { scope: "row", text: row.model }),
        h("td", { class: "num", text: round(row.rating) }),
        h("td", { class: "num", text: `${round(row.lower)} to ${round(row.upper)}` }),
        h("td", { class: "num", text: String(row.games) }), h("td", { class: "num", text: String(row.wins) }),
        h("td", { class: "num", text: String(row.ties) }), h("td", { class: "num", text: String(row.losses) }))));
      say(`Leaderboard of ${kind.toLowerCase()} models loaded.`, "done");
    } catch (error) {
      this.caption.textContent = `${kind} models`;
      this.body.replaceChildren();
      sayError(error);
    }
  },
};

// ---------------------------------------------------------------------------------------------------------
// Start: wire every view, then show the tab the address names (#arena) and load the models.

keyForm.start();
studio.start();
compare.start();
historyView.start();
arena.start();
leaderboard.start();
startTabs();
loadModels();
