// The search page: pick or drop a photo, drag a box on it (as in Google Lens), see similar products.
// Plain browser APIs only; every request goes to this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, box: null, latest: 0 };  // latest: the search whose results are shown

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function fetchJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ? `${response.status}: ${body.detail}` : `HTTP ${response.status}`);
  return body;
}

async function loadModel() {
  const [health, { categories }] = await Promise.all([fetchJSON("/health"), fetchJSON("/categories")]);
  $("model").textContent = `${health.approach} on ${health.dataset}: ${health.items} items, ${health.index}`;
  for (const category of categories) {
    const option = new Option(`${category.name} (${category.count})`, category.id);
    $("category").add(option);
  }
  $("k").max = health.limits.max_k;
  $("text-form").hidden = !health.text_search;
  $("detector-option").hidden = !health.detector;
  $("detector").checked = Boolean(health.detector);
}

// ---- the query image and its box -------------------------------------------------------------------

function showImage(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus("That is not an image file.", true);
    return;
  }
  state.file = file;
  state.box = null;
  const preview = $("preview");
  URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.onload = () => {
    // Show it as large as the drop zone allows (small product shots are scaled up).
    const scale = Math.min(($("drop").clientWidth - 16) / preview.naturalWidth, 420 / preview.naturalHeight);
    preview.style.width = `${Math.round(preview.naturalWidth * scale)}px`;
    $("stage").hidden = false;
    $("drop-hint").hidden = true;
    $("box-hint").hidden = false;
    $("search").disabled = false;
    drawBox();
    search();
  };
}

function drawBox() {
  const box = $("box");
  box.hidden = !state.box;
  if (!state.box) return;
  const [x0, y0, x1, y1] = state.box;
  Object.assign(box.style, {
    left: `${x0 * 100}%`, top: `${y0 * 100}%`, width: `${(x1 - x0) * 100}%`, height: `${(y1 - y0) * 100}%`,
  });
}

function fractionAt(event) {
  const rect = $("preview").getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
}

function enableBoxDrawing() {
  const stage = $("stage");
  let start = null;
  stage.addEventListener("pointerdown", (event) => {
    start = fractionAt(event);
    stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointermove", (event) => {
    if (!start) return;
    const [x, y] = fractionAt(event);
    state.box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)];
    drawBox();
  });
  stage.addEventListener("pointerup", () => {
    if (!start) return;
    start = null;
    const tooSmall = state.box && (state.box[2] - state.box[0] < 0.02 || state.box[3] - state.box[1] < 0.02);
    if (tooSmall) state.box = null;  // a click, not a drag
    drawBox();
    search();
  });
}

function enableFilePicking() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => showImage(event.target.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    showImage(event.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (event) => { if (event.key === "Enter") $("file").click(); });
  $("clear-box").addEventListener("click", () => { state.box = null; drawBox(); search(); });
}

// ---- searching -------------------------------------------------------------------------------------

function addFilter(form) {
  const category = $("category").value;
  if (category === "predicted") form.append("filter", "predicted");
  else if (category) form.append("category", category);
}

async function search() {
  if (!state.file) return;
  const form = new FormData();
  form.append("image", state.file);
  form.append("k", $("k").value);
  if (state.box) form.append("box", state.box.map((v) => v.toFixed(4)).join(","));
  if (!$("detector-option").hidden) form.append("detector", $("detector").checked);
  addFilter(form);
  await run(fetchJSON("/search", { method: "POST", body: form }));
}

// Show a search's results unless a newer search started meanwhile (responses can arrive out of order).
async function run(request) {
  const id = ++state.latest;
  setStatus("searching…");
  try {
    const response = await request;
    if (id === state.latest) show(response);
  } catch (error) {
    if (id === state.latest) setStatus(error.message, true);
  }
}

async function searchText(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  const body = { text, k: Number($("k").value) };
  const category = $("category").value;
  if (category && category !== "predicted") body.category = category;
  await run(fetchJSON("/search/text", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  }));
}

function show(response) {
  const t = response.timings;
  const within = response.category_name ? ` in ${response.category_name}${response.predicted ? " (predicted)" : ""}` : "";
  const region = response.box ? `box ${response.box.map(Math.round).join(",")}, ` : "";
  setStatus(`${response.items.length} results${within}; ${region}${t.total_ms.toFixed(0)} ms ` +
    `(decode ${t.decode_ms.toFixed(1)}, detect ${t.detect_ms.toFixed(1)}, embed ${t.embed_ms.toFixed(1)}, ` +
    `search ${t.search_ms.toFixed(1)}; batch of ${response.batch_size})`);
  const cards = response.items.map((item) => {
    const card = document.createElement("figure");
    card.className = "card";
    const image = document.createElement("img");
    image.src = item.image_url;
    image.alt = item.title;
    image.loading = "lazy";
    const caption = document.createElement("figcaption");
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = item.title;
    title.title = item.title;
    const meta = document.createElement("div");
    meta.className = "meta";
    const category = document.createElement("span");
    category.className = "category";
    category.textContent = item.category;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = item.score.toFixed(3);
    meta.append(category, score);
    caption.append(title, meta);
    card.append(image, caption);
    return card;
  });
  $("results").replaceChildren(...cards);
}

document.addEventListener("DOMContentLoaded", () => {
  enableFilePicking();
  enableBoxDrawing();
  $("options").addEventListener("submit", (event) => { event.preventDefault(); search(); });
  $("category").addEventListener("change", search);
  $("text-form").addEventListener("submit", searchText);
  loadModel().catch((error) => setStatus(`cannot load the model: ${error.message}`, true));
});
