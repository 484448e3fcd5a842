#include "server/page.h"

namespace wisp::server {
namespace {

// Element ids the test drives (tests/server/openai_client/page_test.mjs):
// file, start, status, segments, text, dl-srt, dl-vtt, dl-txt, key.
constexpr const char* kPage = R"WISPHTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wisp</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .sub { color: #666; margin-top: 0; }
  #drop { display: block; margin-top: 1rem; border: 2px dashed #aaa; border-radius: 8px; padding: 1.5rem; text-align: center; cursor: pointer; }
  #drop.over { border-color: #2a6; background: #f3fbf5; }
  #drop input { display: none; }
  .row { display: flex; gap: .8rem; flex-wrap: wrap; align-items: center; margin: .8rem 0; }
  label.f { display: flex; gap: .3rem; align-items: center; }
  input[type=text], input[type=password], select { padding: .25rem .4rem; }
  button { padding: .4rem 1rem; }
  #status { color: #555; min-height: 1.4em; }
  #status.error { color: #b00; }
  #segments { margin-top: 1rem; }
  .seg { display: flex; gap: .8rem; padding: .15rem 0; border-bottom: 1px solid #eee; }
  .seg .t { color: #888; font-variant-numeric: tabular-nums; white-space: nowrap; }
  #downloads a { margin-right: 1rem; }
  #downloads[hidden] { display: none; }
</style>
</head>
<body>
<h1>wisp</h1>
<p class="sub">Speech to text on this server (<span id="model">&hellip;</span>). The audio goes to this server only.</p>

<label id="drop" for="file">
  <input type="file" id="file" accept="audio/*,video/*">
  <span id="chosen">Drop an audio or video file here, or click to pick one.</span>
</label>

<div class="row">
  <label class="f">Task <select id="task"><option value="transcribe">transcribe</option><option value="translate">translate to English</option></select></label>
  <label class="f">Language <input type="text" id="language" size="8" placeholder="detect"></label>
  <label class="f">API key <input type="password" id="key" size="16" placeholder="if the server needs one"></label>
  <button id="start" disabled>Transcribe</button>
  <button id="stop" disabled>Stop</button>
</div>

<div id="status"></div>
<div id="downloads" hidden>Download: <a id="dl-srt" download>srt</a><a id="dl-vtt" download>vtt</a><a id="dl-txt" download>txt</a></div>
<div id="segments"></div>
<div id="text" hidden></div>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
let file = null;
let controller = null;
const urls = [];

$("key").value = localStorage.getItem("wisp_api_key") || "";
$("key").addEventListener("change", () => { localStorage.setItem("wisp_api_key", $("key").value); refreshModel(); });

function headers() {
  const key = $("key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

async function refreshModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const j = await r.json();
    $("model").textContent = r.ok ? "model " + j.data.map((m) => m.id).join(", ") : "an API key is needed";
  } catch (e) {
    $("model").textContent = "model unknown";
  }
}
refreshModel();

function choose(f) {
  file = f || null;
  $("chosen").textContent = file ? file.name + " (" + (file.size / 1e6).toFixed(1) + " MB)"
                                 : "Drop an audio or video file here, or click to pick one.";
  $("start").disabled = !file || controller !== null;
}
$("file").addEventListener("change", (e) => choose(e.target.files[0]));
for (const ev of ["dragenter", "dragover"])
  $("drop").addEventListener(ev, (e) => { e.preventDefault(); $("drop").classList.add("over"); });
for (const ev of ["dragleave", "drop"])
  $("drop").addEventListener(ev, () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]); });

function stamp(seconds) {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
  const p = (n, w) => String(n).padStart(w, "0");
  return (h ? h + ":" : "") + p(m, 2) + ":" + p(s, 2) + "." + p(ms % 1000, 3);
}

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function addSegment(seg) {
  const row = document.createElement("div");
  row.className = "seg";
  const t = document.createElement("span");
  t.className = "t";
  t.textContent = stamp(seg.start) + " \u2192 " + stamp(seg.end);
  const x = document.createElement("span");
  x.className = "x";
  x.textContent = seg.text.trim();
  row.append(t, x);
  $("segments").append(row);
}

function offer(files) {
  while (urls.length) URL.revokeObjectURL(urls.pop());
  const stem = file.name.replace(/\.[^.]*$/, "") || "transcript";
  for (const [ext, type] of [["srt", "application/x-subrip"], ["vtt", "text/vtt"], ["txt", "text/plain"]]) {
    const url = URL.createObjectURL(new Blob([files[ext]], { type: type + ";charset=utf-8" }));
    urls.push(url);
    $("dl-" + ext).href = url;
    $("dl-" + ext).download = stem + "." + ext;
  }
  $("downloads").hidden = false;
}

function onEvent(ev, state) {
  if (ev.error) throw new Error(ev.error.message || "the server failed");
  if (ev.type === "transcript.text.delta") {
    state.count++;
    addSegment(ev.segment || { start: 0, end: 0, text: ev.delta });
    status("Transcribing\u2026 " + state.count + " segment" + (state.count === 1 ? "" : "s")
           + (ev.segment ? ", " + stamp(ev.segment.end) + " done" : ""));
  } else if (ev.type === "transcript.text.done") {
    state.done = true;
    $("text").textContent = ev.text;
    if (ev.files) offer(ev.files);
    status("Done: " + state.count + " segment" + (state.count === 1 ? "" : "s") + ".");
  }
}

async function run() {
  if (!file) return;
  controller = new AbortController();
  $("start").disabled = true;
  $("stop").disabled = false;
  $("segments").textContent = "";
  $("text").textContent = "";
  $("downloads").hidden = true;
  status("Uploading and decoding\u2026");
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", "whisper-1");
  form.append("stream", "true");
  const language = $("language").value.trim();
  if (language) form.append("language", language);
  const route = $("task").value === "translate" ? "translations" : "transcriptions";
  const state = { count: 0, done: false };
  try {
    const r = await fetch("/v1/audio/" + route, { method: "POST", body: form, headers: headers(),
                                                  signal: controller.signal });
    if (!r.ok) {
      let message = "HTTP " + r.status;
      try { message = (await r.json()).error.message; } catch (e) {}
      throw new Error(message);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data && data !== "[DONE]") onEvent(JSON.parse(data), state);
      }
      if (done) break;
    }
    if (!state.done) throw new Error("the stream ended early");
  } catch (e) {
    status(e.name === "AbortError" ? "Stopped." : "Error: " + e.message, e.name !== "AbortError");
  } finally {
    controller = null;
    $("stop").disabled = true;
    $("start").disabled = !file;
  }
}
$("start").addEventListener("click", run);
$("stop").addEventListener("click", () => controller && controller.abort());
</script>
</body>
</html>
)WISPHTML";

}  // namespace

const std::string& index_html() {
  static const std::string page(kPage);
  return page;
}

}  // namespace wisp::server
