// Faces made in the page: the ONNX generator run by onnxruntime-web (WebAssembly), 16 seeds a page,
// and a walk between two faces. Latent vectors are drawn here, so a seed's face differs from Python's.
"use strict";

const PAGE = 16;   // faces per page
const STEPS = 16;  // frames of a walk, its two faces included
const $ = (id) => document.getElementById(id);
const state = {start: 0, a: null, b: null};
let model, session, queue = Promise.resolve();
const report = (error) => { $("status").textContent = error.message; };

// A standard-normal latent vector for a seed: mulberry32 uniforms through Box-Muller.
function zFor(seed) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const z = new Float32Array(model.latent_dim);
  for (let i = 0; i < z.length; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - uniform())), angle = 2 * Math.PI * uniform();
    z[i] = radius * Math.cos(angle);
    if (i + 1 < z.length) z[i + 1] = radius * Math.sin(angle);
  }
  return z;
}

// Between two latent vectors at t in [0, 1]: slerp keeps a Gaussian sample's typical norm,
// where the straight line passes through washed-out faces (dcgan_tf.model.latent.interpolate).
function between(a, b, t, method) {
  const dot = a.reduce((sum, x, i) => sum + x * b[i], 0);
  const norm = (v) => Math.hypot(...v);
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / (norm(a) * norm(b)))));
  if (method === "linear" || omega < 1e-6) return a.map((x, i) => (1 - t) * x + t * b[i]);
  const [wa, wb] = [Math.sin((1 - t) * omega), Math.sin(t * omega)].map((w) => w / Math.sin(omega));
  return a.map((x, i) => wa * x + wb * b[i]);
}

// uint8 pixels [N, H, W, 3] of the faces of N latent vectors; one run at a time, as the session needs.
function faces(zs) {
  const flat = new Float32Array(zs.length * model.latent_dim);
  zs.forEach((z, i) => flat.set(z, i * model.latent_dim));
  const feeds = {[session.inputNames[0]]: new ort.Tensor("float32", flat, [zs.length, model.latent_dim])};
  const run = queue.then(() => session.run(feeds));
  queue = run.catch(() => {});
  return run.then((outputs) => outputs[session.outputNames[0]].data);
}

function draw(canvas, pixels, index) {
  const size = model.image_size, image = new ImageData(size, size), face = size * size * 3;
  for (let p = 0; p < size * size; p++) {
    image.data.set(pixels.subarray(index * face + 3 * p, index * face + 3 * p + 3), 4 * p);
    image.data[4 * p + 3] = 255;
  }
  Object.assign(canvas, {width: size, height: size}).getContext("2d").putImageData(image, 0, 0);
}

// the two selected faces are framed in their colours
function mark(figure) {
  const seed = Number(figure.dataset.seed);
  figure.className = seed === state.a ? "a" : seed === state.b ? "b" : "";
}

async function showPage(start) {
  state.start = Math.max(0, start);
  const seeds = Array.from({length: PAGE}, (_, i) => state.start + i);
  const pixels = await faces(seeds.map(zFor));
  $("grid").replaceChildren(...seeds.map((seed, i) => {
    const figure = document.createElement("figure"), canvas = document.createElement("canvas");
    draw(canvas, pixels, i);
    figure.dataset.seed = seed;
    mark(figure);
    figure.append(canvas, seed);
    figure.onclick = () => select(seed).catch(report);
    return figure;
  }));
  $("range").textContent = `seeds ${seeds[0]}-${seeds[PAGE - 1]}`;
}

async function showCurrent() {
  const a = zFor(state.a), step = Number($("walk").value);
  const z = state.b === null ? a : between(a, zFor(state.b), step / (STEPS - 1), $("method").value);
  draw($("current"), await faces([z]), 0);
  $("current").dataset.shown = state.b === null ? `${state.a}` : `${state.a}-${state.b}:${step}`;
}

function select(seed) {
  [state.a, state.b] = state.a === null || state.b !== null ? [seed, null] : [state.a, seed];
  $("walk").value = 0;
  $("walk-controls").hidden = state.b === null;
  for (const figure of $("grid").children) mark(figure);
  return showCurrent();
}

// for tests and the console: the faces of explicit latent vectors, as plain numbers
window.latentFor = (seed) => Array.from(zFor(seed));
window.facesFor = async (zs) => Array.from(await faces(zs));

async function start() {
  try {
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which a plain static server lacks
    model = await (await fetch("model.json")).json();
    session = await ort.InferenceSession.create("generator.onnx", {executionProviders: ["wasm"]});
    await showPage(0);
    window.firstPageMs = performance.now();  // from navigation: page, runtime, model and the first 16 faces
    $("status").textContent = "";
  } catch (error) {
    window.loadError = `${error.message} (open this page from a web server, not as a file)`;
    report({message: window.loadError});
  }
  $("prev").onclick = () => showPage(state.start - PAGE).catch(report);
  $("next").onclick = () => showPage(state.start + PAGE).catch(report);
  $("walk").oninput = $("method").onchange = () => showCurrent().catch(report);
}

start();
