// The review page: plain JS, no build step. Every call goes to /api/ with the key cookie.
"use strict";
const $ = (s) => document.querySelector(s);
let items = [];          // item heads in display order
let undoStack = [];      // ids of items this page confirmed/corrected, newest last
let current = 0;         // index of the focused item

function say(text, error = false) {
  const m = $("#msg");
  m.textContent = text;
  m.className = error ? "error" : "";
}

async function api(path, options = {}) {
  const opts = { credentials: "same-origin", ...options };
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers = { "Content-Type": "application/json" };
    delete opts.json;
  }
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) { showLogin(); }
  return { ok: r.ok, status: r.status, body };
}

function showLogin() { $("#login").hidden = false; $("#main").hidden = true; $("#key").focus(); }

function reviewer() {
  const name = $("#reviewer").value.trim();
  localStorage.setItem("reviewer", name);
  return name;
}

function threshold() { return parseFloat($("#threshold").value); }

function readingHtml(item) {
  // the model's reading, characters under the threshold marked
  const span = document.createElement("span");
  const text = item.model_text || "";
  const conf = item.char_conf || [];
  const mark = $("#mark").checked;
  [...text].forEach((ch, i) => {
    const s = document.createElement("span");
    s.textContent = ch;
    if (mark && conf[i] !== undefined && conf[i] < threshold()) {
      s.className = "lowc";
      s.title = "confidence " + conf[i].toFixed(2);
    }
    span.appendChild(s);
  });
  return span;
}

function render() {
  const c = { new: 0, confirmed: 0, corrected: 0 };
  items.forEach((it) => { c[it.status] += 1; });
  $("#counts").textContent = `new ${c.new} · confirmed ${c.confirmed} · corrected ${c.corrected}`;
  const box = $("#items");
  box.textContent = "";
  items.forEach((item, i) => {
    const row = document.createElement("div");
    row.className = "item status-" + item.status;
    if ($("#mark").checked && item.confidence !== null && item.confidence < threshold()) {
      row.classList.add("low");
    }
    row.dataset.id = item.id;
    row.dataset.testid = "item";
    const img = document.createElement("img");
    img.src = "/api/images/" + item.image_sha;
    img.alt = item.name;
    const mid = document.createElement("div");
    const input = document.createElement("input");
    input.className = "text";
    input.value = item.text;
    input.dataset.saved = item.text;
    input.setAttribute("aria-label", "reading of " + item.name);
    input.addEventListener("focus", () => focusItem(i, false));
    const reading = document.createElement("div");
    reading.className = "reading";
    reading.append("model: ", readingHtml(item));
    mid.append(input, reading);
    const side = document.createElement("div");
    const conf = item.confidence === null ? "–" : item.confidence.toFixed(2);
    side.innerHTML = `<span class="badge"></span> <span class="conf">v${item.version} · conf ${conf}</span>`;
    side.querySelector(".badge").textContent = item.status;
    row.append(img, mid, side);
    box.appendChild(row);
  });
  focusItem(Math.min(current, items.length - 1), true);
}

function rowInput(i) {
  const row = $("#items").children[i];
  return row ? row.querySelector("input.text") : null;
}

function focusItem(i, move = true) {
  if (i < 0 || i >= items.length) return;
  const rows = $("#items").children;
  if (rows[current]) rows[current].classList.remove("focused");
  current = i;
  rows[i].classList.add("focused");
  if (move) {
    const inp = rowInput(i);
    inp.focus();
    inp.select();
    rows[i].scrollIntoView({ block: "nearest" });
  }
}

async function load() {
  const r = await api("/api/items?order=" + $("#order").value);
  if (!r.ok) { if (r.status !== 401) say(r.body ? r.body.error : "cannot load items", true); return; }
  $("#login").hidden = true;
  $("#main").hidden = false;
  // the list carries heads only; the model reading's per-character confidences come per item
  const full = await Promise.all(r.body.items.map((it) => api("/api/items/" + it.id)));
  items = full.filter((x) => x.ok).map((x) => x.body);
  render();
  loadModels();
}

function replaceItem(item) {
  const i = items.findIndex((x) => x.id === item.id);
  if (i >= 0) items[i] = item;
  render();
}

async function save(i) {
  const item = items[i];
  const name = reviewer();
  if (!name) { say("Type your name in the Reviewer box first.", true); $("#reviewer").focus(); return; }
  const text = rowInput(i).value;
  const r = await api(`/api/items/${item.id}/review`, {
    method: "POST", json: { text, reviewer: name, base_version: item.version } });
  if (r.status === 409) {
    say("Conflict: " + r.body.error + " — the item was reloaded.", true);
    replaceItem(r.body.item ? (await api("/api/items/" + item.id)).body : item);
    return;
  }
  if (!r.ok) { say(r.body ? r.body.error : "save failed", true); return; }
  undoStack.push(item.id);
  say(`Saved item ${item.id} as ${r.body.status}.`);
  current = Math.min(i + 1, items.length - 1);
  replaceItem(r.body);
}

async function undoLast() {
  const id = undoStack.pop();
  if (id === undefined) { say("Nothing to undo."); return; }
  const i = items.findIndex((x) => x.id === id);
  const item = i >= 0 ? items[i] : (await api("/api/items/" + id)).body;
  const r = await api(`/api/items/${id}/undo`, {
    method: "POST", json: { reviewer: reviewer() || "unknown", base_version: item.version } });
  if (!r.ok) { say(r.body ? r.body.error : "undo failed", true); return; }
  say(`Undid the last save of item ${id}.`);
  if (i >= 0) current = i;
  replaceItem(r.body);
}

// Key actions run one after another: a fast typist's second Enter acts on the item the
// first one moved to, not on a save still in flight.
let chain = Promise.resolve();
function enqueue(action) { chain = chain.then(action).catch((err) => say(String(err), true)); }

document.addEventListener("keydown", (e) => {
  if ($("#main").hidden) return;
  const inItem = e.target.classList && e.target.classList.contains("text");
  if (e.key === "Enter" && inItem) { e.preventDefault(); enqueue(() => save(current)); }
  else if (e.key === "ArrowDown" && inItem) { e.preventDefault(); enqueue(() => focusItem(current + 1)); }
  else if (e.key === "ArrowUp" && inItem) { e.preventDefault(); enqueue(() => focusItem(current - 1)); }
  else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
    // unsaved typing in the focused box, or another field: the browser's own text undo
    if (inItem && e.target.value !== e.target.dataset.saved) return;
    if (!inItem && e.target.tagName === "INPUT") return;
    e.preventDefault();
    enqueue(undoLast);
  }
});

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("/api/login", { method: "POST", json: { key: $("#key").value } });
  if (!r.ok) { say(r.body ? r.body.error : "sign-in failed", true); return; }
  load();
});

$("#upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const files = $("#files").files;
  if (!files.length) { say("Choose images first.", true); return; }
  const fd = new FormData();
  for (const f of files) fd.append("files", f, f.name);
  fd.append("mode", document.querySelector("input[name=mode]:checked").value);
  say("Reading " + files.length + " image(s)…");
  const r = await api("/api/uploads", { method: "POST", body: fd });
  if (!r.ok) { say(r.body ? r.body.error : "upload failed", true); return; }
  say(`Uploaded ${r.body.items.length} item(s).`);
  $("#files").value = "";
  await load();
});

async function loadModels() {
  const r = await api("/api/models");
  if (!r.ok) return;
  const body = $("#models tbody");
  body.textContent = "";
  const num = (x) => (x === null || x === undefined) ? "–" : x.toFixed(3);
  const fmt = (rep, part) => rep ? `${num(rep.before[part].exact)} → ${num(rep.after[part].exact)}` : "–";
  for (const v of r.body.versions) {
    const tr = document.createElement("tr");
    const when = new Date(v.created * 1000).toISOString().slice(0, 16).replace("T", " ");
    tr.innerHTML = `<td></td><td>${when}</td><td>${fmt(v.report, "heldout")}</td><td>${fmt(v.report, "htr_test")}</td><td></td>`;
    tr.children[0].textContent = `v${v.id}${v.id === r.body.serving ? " (serving)" : ""} ${v.note || ""}`;
    if (v.id !== r.body.serving) {
      const b = document.createElement("button");
      b.textContent = "switch to this version";
      b.onclick = async () => {
        const a = await api(`/api/models/${v.id}/activate`, { method: "POST" });
        say(a.ok ? `Serving version ${v.id}.` : (a.body ? a.body.error : "switch failed"), !a.ok);
        loadModels();
      };
      tr.children[4].appendChild(b);
    }
    body.appendChild(tr);
  }
  const j = await api("/api/jobs");
  if (j.ok && j.body.jobs.length) {
    const last = j.body.jobs[0];
    $("#job").textContent = `job ${last.id}: ${last.status}` + (last.error ? ` (${last.error})` : "");
  }
}

$("#finetune").addEventListener("click", async () => {
  const r = await api("/api/jobs/finetune", { method: "POST", json: { reviewer: reviewer() } });
  say(r.ok ? `Fine-tuning queued (job ${r.body.job}).` : (r.body ? r.body.error : "failed"), !r.ok);
  loadModels();
});

$("#order").addEventListener("change", () => { current = 0; load(); });
$("#mark").addEventListener("change", render);
$("#threshold").addEventListener("input", () => {
  $("#threshold-value").textContent = threshold().toFixed(2);
  render();
});
$("#reviewer").value = localStorage.getItem("reviewer") || "";
load();
