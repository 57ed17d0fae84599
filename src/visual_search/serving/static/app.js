// The search page, as Google Lens: drop, paste or pick a photo; every object found in it is a chip on the
// photo (the largest searched first, the others one tap away: all searched in one request); drag a box
// around anything else; refine with text ("in red") where the model has a text tower; "more like this" on
// any result. The query lives in the page URL, so a search can be reloaded or shared.
// Plain browser APIs only; every request goes to this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  health: null,
  file: null, // the query image (a File or Blob)
  upload: null, // its digest on the server (GET /uploads/<digest>)
  size: null, // its [width, height] in pixels
  objects: [], // POST /search/objects: each detected object with its results
  selected: null, // the chip shown, or null
  box: null, // [x0, y0, x1, y1] as fractions of the image: the drawn box, or the selected chip's
  drawn: false, // whether `box` was drawn by hand
  text: "", // refinement of the image query
  item: null, // "more like this": the item searched
  latest: 0, // the search whose results are shown
};

function setStatus(text, isError = false, detail = "") {
  $("status").textContent = text;
  $("status").title = detail;
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
  state.health = health;
  const by = health.text_search ? "by photo or by text" : "by photo";
  $("model").textContent = `Search ${health.items} products ${by}`;
  const about = {
    model: health.approach, dataset: health.dataset, encoder: `${health.encoder}, ${health.embed_dim}-d, on ${health.runtime}`,
    index: health.index, collection: health.collection, "category filter": health.classifier,
    detector: health.detector || "none", "objects on the photo": health.objects || "none",
  };
  $("about").replaceChildren(...Object.entries(about).flatMap(([key, value]) => {
    const term = document.createElement("dt");
    term.textContent = key;
    const description = document.createElement("dd");
    description.textContent = value;
    return [term, description];
  }));
  for (const category of categories) $("category").add(new Option(`${category.name} (${category.count})`, category.id));
  $("k").max = health.limits.max_k;
  $("text-form").hidden = !health.text_search;
  $("refine").hidden = !health.text_search;
  $("detector-option").hidden = !health.detector;
  $("detector").checked = Boolean(health.detector);
}

// ---- the page URL: the query, so that it can be reloaded and shared --------------------------------

function saveQuery() {
  const params = new URLSearchParams();
  if (state.item) params.set("item", state.item);
  else if (state.upload) params.set("upload", state.upload);
  if (state.box && !state.item) params.set("box", state.box.map((v) => v.toFixed(4)).join(","));
  if (state.text && !state.item) params.set("text", state.text);
  if ($("category").value) params.set("category", $("category").value);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

async function restoreQuery() {
  const params = new URLSearchParams(location.search);
  if (params.get("category")) $("category").value = params.get("category");
  state.text = params.get("text") || "";
  $("refine-text").value = state.text;
  if (params.get("item")) return moreLike(params.get("item"));
  if (!params.get("upload")) return;
  const response = await fetch(`/uploads/${encodeURIComponent(params.get("upload"))}`);
  if (!response.ok) return setStatus("That photo is no longer on the server: upload it again.", true);
  const box = params.get("box") ? params.get("box").split(",").map(Number) : null;
  showImage(await response.blob(), box);
}

// ---- the query image, its objects and its box --------------------------------------------------------

function showImage(file, box = null) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus("That is not an image file.", true);
    return;
  }
  Object.assign(state, { file, upload: null, objects: [], selected: null, box, drawn: Boolean(box), item: null });
  const preview = $("preview");
  URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.onload = () => {
    state.size = [preview.naturalWidth, preview.naturalHeight];
    $("stage").hidden = false;
    $("drop-hint").hidden = true;
    $("box-hint").hidden = false;
    $("search").disabled = false;
    drawChips();
    drawBox();
    if (box) search();
    else searchObjects();
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

function fractions(box) {
  const [width, height] = state.size;
  return [box[0] / width, box[1] / height, box[2] / width, box[3] / height];
}

function drawChips() {
  const chips = state.objects.map((object, i) => {
    const [x0, y0, x1, y1] = fractions(object.box);
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.classList.toggle("selected", i === state.selected);
    chip.style.left = `${((x0 + x1) / 2) * 100}%`;
    chip.style.top = `${((y0 + y1) / 2) * 100}%`;
    chip.textContent = object.label || object.items[0]?.category || `${i + 1}`;  // what it looks like
    chip.title = `search this object (${object.items.length} results)`;
    chip.addEventListener("pointerdown", (event) => event.stopPropagation());  // not a box drag
    chip.addEventListener("click", () => select(i));
    return chip;
  });
  $("chips").replaceChildren(...chips);
}

// Show object i's results: they came with the photo's one request, so switching costs nothing.
function select(i) {
  const object = state.objects[i];
  Object.assign(state, { selected: i, box: fractions(object.box), drawn: false });
  drawChips();
  drawBox();
  const name = object.label || object.items[0]?.category || `object ${i + 1}`;
  showResults(object.items, `${object.items.length} results for the ${name}`);
  saveQuery();
}

function fractionAt(event) {
  const rect = $("preview").getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
}

function enableBoxDrawing() {
  const stage = $("stage");
  let start = null;
  let moved = false;
  stage.addEventListener("pointerdown", (event) => {
    if (!state.file) return;  // "more like this" shows an item, not a photo to draw on
    start = fractionAt(event);
    moved = false;
    stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointermove", (event) => {
    if (!start) return;
    const [x, y] = fractionAt(event);
    state.box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)];
    Object.assign(state, { drawn: true, selected: null });
    moved = true;
    drawBox();
  });
  stage.addEventListener("pointerup", () => {
    if (!start) return;
    start = null;
    if (!moved) return;  // a click, not a drag
    const tooSmall = state.box[2] - state.box[0] < 0.02 || state.box[3] - state.box[1] < 0.02;
    if (tooSmall) Object.assign(state, { box: null, drawn: false });
    state.selected = null;
    drawChips();
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
  document.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) showImage(file);
  });
  $("clear-box").addEventListener("click", () => {
    Object.assign(state, { box: null, drawn: false, selected: null });
    drawChips();
    drawBox();
    search();
  });
}

// ---- searching -------------------------------------------------------------------------------------

function queryForm() {
  const form = new FormData();
  form.append("image", state.file);
  form.append("k", $("k").value);
  const category = $("category").value;
  if (category === "predicted") form.append("filter", "predicted");
  else if (category) form.append("category", category);
  if (state.text) form.append("text", state.text);
  return form;
}

// Every object of the photo, searched in one request; the largest shown first.
async function searchObjects() {
  if (!state.file) return;
  const response = await run(fetchJSON("/search/objects", { method: "POST", body: queryForm() }));
  if (!response) return;
  Object.assign(state, { upload: response.upload, objects: response.objects, item: null });
  select(0);
  const t = response.timings;
  setStatus(`${$("status").textContent}; ${response.objects.length} object(s) in ${t.total_ms.toFixed(0)} ms`, false,
    `decode ${t.decode_ms.toFixed(1)} ms, detect ${t.detect_ms.toFixed(1)}, embed ${t.embed_ms.toFixed(1)}, search ${t.search_ms.toFixed(1)}`);
}

// The whole photo or the box, with the text if any.
async function search() {
  if (!state.file) return;
  if (!state.box && !state.drawn && state.objects.length === 0) return searchObjects();
  const form = queryForm();
  if (state.box) form.append("box", state.box.map((v) => v.toFixed(4)).join(","));
  if (!$("detector-option").hidden) form.append("detector", $("detector").checked);
  const response = await run(fetchJSON("/search", { method: "POST", body: form }));
  if (!response) return;
  state.upload = response.upload;
  state.item = null;
  const within = response.category_name ? ` in ${response.category_name}${response.predicted ? " (predicted)" : ""}` : "";
  const refined = response.text ? ` “${response.text}”` : "";
  const t = response.timings;
  showResults(response.items, `${response.items.length} results${refined}${within} in ${t.total_ms.toFixed(0)} ms`,
    `decode ${t.decode_ms.toFixed(1)} ms, detect ${t.detect_ms.toFixed(1)}, embed ${t.embed_ms.toFixed(1)}, ` +
    `search ${t.search_ms.toFixed(1)}; batch of ${response.batch_size}`);
  saveQuery();
}

async function moreLike(itemId) {
  const params = new URLSearchParams({ k: $("k").value });
  const category = $("category").value;
  if (category && category !== "predicted") params.set("category", category);
  const response = await run(fetchJSON(`/items/${encodeURIComponent(itemId)}/similar?${params}`));
  if (!response) return;
  Object.assign(state, { item: itemId, file: null, upload: null, objects: [], selected: null, box: null, drawn: false });
  const preview = $("preview");
  preview.onload = null;
  preview.src = `/items/${encodeURIComponent(itemId)}/image`;
  $("stage").hidden = false;
  $("drop-hint").hidden = true;
  $("box-hint").hidden = true;
  drawChips();
  drawBox();
  showResults(response.items, `${response.items.length} more like this`);
  saveQuery();
}

// A request's body unless a newer search started meanwhile (responses can arrive out of order).
async function run(request) {
  const id = ++state.latest;
  setStatus("searching…");
  try {
    const response = await request;
    return id === state.latest ? response : null;
  } catch (error) {
    if (id === state.latest) setStatus(error.message, true);
    return null;
  }
}

async function searchText(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  const body = { text, k: Number($("k").value) };
  const category = $("category").value;
  if (category && category !== "predicted") body.category = category;
  const response = await run(fetchJSON("/search/text", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  }));
  if (response) showResults(response.items, `${response.items.length} results for “${text}”`);
}

function refine(event) {
  event.preventDefault();
  state.text = $("refine-text").value.trim();
  if (state.item || !state.file) return;
  if (state.selected !== null && !state.drawn) state.drawn = true;  // refine the chip's region
  search();
}

function rerun() {
  if (state.item) moreLike(state.item);
  else if (state.drawn || (state.box && state.selected === null)) search();
  else searchObjects();
}

// ---- results -----------------------------------------------------------------------------------------

function showResults(items, summary, detail = "") {
  setStatus(summary, false, detail);
  $("results").replaceChildren(...items.map(card));
}

function card(item) {
  const figure = document.createElement("figure");
  figure.className = "card";
  const image = document.createElement("img");
  image.src = item.image_url;
  image.alt = item.title;
  image.loading = "lazy";
  image.addEventListener("click", () => showDetail(item));
  const caption = document.createElement("figcaption");
  const title = document.createElement("div");
  title.className = "title";
  title.textContent = item.title;
  title.title = item.title;  // the full title on hover
  const meta = document.createElement("div");
  meta.className = "meta";
  const category = document.createElement("span");
  category.className = "category";
  category.textContent = item.category;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = item.score.toFixed(3);
  meta.append(category, score);
  const like = document.createElement("button");
  like.type = "button";
  like.className = "like linkish";
  like.textContent = "More like this";
  like.addEventListener("click", () => moreLike(item.id));
  caption.append(title, meta, like);
  figure.append(image, caption);
  return figure;
}

function showDetail(item) {
  $("detail-image").src = item.image_url;
  $("detail-image").alt = item.title;
  $("detail-title").textContent = item.title;
  $("detail-meta").textContent = `${item.category} · similarity ${item.score.toFixed(3)} · ${item.id}`;
  $("detail-like").onclick = () => { $("detail").close(); moreLike(item.id); };
  $("detail").showModal();
}

document.addEventListener("DOMContentLoaded", () => {
  enableFilePicking();
  enableBoxDrawing();
  $("options").addEventListener("submit", (event) => { event.preventDefault(); rerun(); });
  $("category").addEventListener("change", () => { rerun(); saveQuery(); });
  $("text-form").addEventListener("submit", searchText);
  $("refine").addEventListener("submit", refine);
  $("about-toggle").addEventListener("click", () => {
    $("about").hidden = !$("about").hidden;
    $("about-toggle").setAttribute("aria-expanded", String(!$("about").hidden));
  });
  loadModel()
    .then(restoreQuery)
    .catch((error) => setStatus(`cannot load the catalogue: ${error.message}`, true));
});
