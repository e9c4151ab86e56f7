// The face explorer's page: a grid of faces by seed, a selection of one or two faces, the walk
// between them, attribute dials and save. Every picture comes from this explorer's own API.
"use strict";

const PAGE = 16;   // faces per page
const STEPS = 16;  // frames of a walk, its two faces included
const DIAL = 3;    // dial range shown, in latent standard deviations (the API allows more)

const state = {start: 0, truncation: null, a: null, b: null, step: 0, dials: {}};
const $ = (id) => document.getElementById(id);

async function api(path, params) {
  const response = await fetch(`api/${path}?${params}`);
  if (!response.ok) {
    const text = await response.text();
    let message = text;
    try { message = JSON.parse(text).error; } catch (error) { /* not JSON: show it as it is */ }
    throw new Error(message || `${response.status} ${response.statusText}`);
  }
  return response;
}

function showError(error) {
  $("status").textContent = error.message;
}

// Runs load(request) for the latest request only: a request made while one is loading replaces
// any other waiting one, so dragging a slider never queues up more than one generation.
function latestOnly(load) {
  let running = false, waiting = null;
  return async (request) => {
    waiting = request;
    if (running) return;
    running = true;
    while (waiting !== null) {
      const next = waiting;
      waiting = null;
      try {
        await load(next);
        $("status").textContent = "";
      } catch (error) {
        showError(error);
      }
    }
    running = false;
  };
}

function withLook(params, dials) {
  if (state.truncation !== null) params.set("truncation", state.truncation);
  const set = Object.entries(state.dials).filter(([, value]) => value !== 0);
  if (dials && set.length) params.set("dials", set.map(([name, value]) => `${name}:${value}`).join(","));
  return params;
}

function faceParams() {
  const params = new URLSearchParams({seed: state.a});
  if (state.b !== null) {
    params.set("to", state.b);
    params.set("step", state.step);
    params.set("steps", STEPS);
  }
  return withLook(params, true);
}

async function showImage(img, path, params) {
  const blob = await (await api(path, params)).blob();
  const old = img.src;
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
}

const loadPage = latestOnly(async (start) => {
  const params = withLook(new URLSearchParams({start, count: PAGE}), false);
  const {faces} = await (await api("page", params)).json();
  const grid = $("grid");
  grid.replaceChildren(...faces.map(({seed, png}) => {
    const figure = document.createElement("figure");
    figure.dataset.seed = seed;
    figure.innerHTML = `<img alt="face of seed ${seed}" src="data:image/png;base64,${png}"><figcaption>${seed}</figcaption>`;
    figure.addEventListener("click", () => select(seed));
    return figure;
  }));
  $("range").textContent = `seeds ${start}-${start + faces.length - 1}`;
  markSelected();
});

const loadCurrent = latestOnly((params) => showImage($("current"), "face.png", params));
const loadEndA = latestOnly((params) => showImage($("end-a").querySelector("img"), "face.png", params));
const loadEndB = latestOnly((params) => showImage($("end-b").querySelector("img"), "face.png", params));

function goTo(start) {
  state.start = Math.max(0, start);
  $("prev").disabled = state.start === 0;
  loadPage(state.start);
}

function markSelected() {
  for (const figure of $("grid").children) {
    const seed = Number(figure.dataset.seed);
    figure.classList.toggle("a", seed === state.a);
    figure.classList.toggle("b", seed === state.b);
  }
}

// First click: face A. Second: face B and the walk between them. A third starts again from it.
function select(seed) {
  if (state.a === null || state.b !== null) {
    state.a = seed;
    state.b = null;
  } else if (seed !== state.a) {
    state.b = seed;
  }
  state.step = 0;
  $("walk").value = 0;
  markSelected();
  showSelection();
}

function showSelection() {
  if (state.a === null) return;
  const walking = state.b !== null;
  for (const [end, seed, load] of [["end-a", state.a, loadEndA], ["end-b", state.b, loadEndB]]) {
    $(end).hidden = !walking;
    if (walking) {
      $(end).querySelector("figcaption").textContent = `seed ${seed}`;
      load(withLook(new URLSearchParams({seed}), true));
    }
  }
  $("walk-controls").hidden = !walking;
  $("walk-value").textContent = walking ? `${state.step + 1}/${STEPS}` : "";
  $("hint").textContent = walking
    ? `Walking from seed ${state.a} to seed ${state.b}. Click another face to start again.`
    : `Seed ${state.a}. Click a second face to walk to it.`;
  $("save").disabled = false;
  $("saved").hidden = true;
  loadCurrent(faceParams());
}

function makeDials(attributes, limit) {
  const range = Math.min(DIAL, limit);
  for (const name of attributes) {
    state.dials[name] = 0;
    const row = document.createElement("div");
    row.className = "control dial";
    row.innerHTML = `<label></label><input type="range" step="0.1" value="0"><output>0</output>`;
    const [label, input, output] = ["label", "input", "output"].map((tag) => row.querySelector(tag));
    label.textContent = name.replaceAll("_", " ");
    label.title = name;
    Object.assign(input, {min: -range, max: range, value: 0});
    input.setAttribute("aria-label", name);
    input.addEventListener("input", () => {
      state.dials[name] = Number(input.value);
      output.textContent = input.value;
      showSelection();
    });
    $("dials").append(row);
  }
}

function download(name, base64, type) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const link = $(type === "image/png" ? "png-link" : "npy-link");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([bytes], {type}));
  link.download = link.textContent = name;
  link.click();
}

async function save() {
  try {
    const saved = await (await api("save", faceParams())).json();
    download(`${saved.name}.png`, saved.png, "image/png");
    download(`${saved.name}.npy`, saved.npy, "application/octet-stream");
    $("command").textContent = saved.command;
    $("shows").textContent = `It shows this face as ${saved.shows}.`;
    $("saved").hidden = false;
  } catch (error) {
    showError(error);
  }
}

async function start() {
  const model = await (await api("model", "")).json();
  $("model").textContent = `${model.model} - ${model.image_size}x${model.image_size}, latent ${model.latent_dim}`;
  makeDials(model.attributes, model.limits.dial);
  $("walk").max = STEPS - 1;
  $("prev").addEventListener("click", () => goTo(state.start - PAGE));
  $("next").addEventListener("click", () => goTo(state.start + PAGE));
  $("goto").addEventListener("change", () => goTo(Number($("goto").value) || 0));
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT") return;
    if (event.key === "ArrowLeft" && state.start > 0) goTo(state.start - PAGE);
    if (event.key === "ArrowRight") goTo(state.start + PAGE);
  });
  $("truncation").addEventListener("input", () => {
    const value = Number($("truncation").value);
    state.truncation = value > 20 ? null : value / 10;  // 0.1-2.0, then off
    $("truncation-value").textContent = state.truncation === null ? "off" : state.truncation.toFixed(1);
    loadPage(state.start);
    showSelection();
  });
  $("walk").addEventListener("input", () => {
    state.step = Number($("walk").value);
    $("walk-value").textContent = `${state.step + 1}/${STEPS}`;
    $("saved").hidden = true;
    loadCurrent(faceParams());
  });
  $("save").addEventListener("click", save);
  goTo(0);
}

start().catch(showError);
