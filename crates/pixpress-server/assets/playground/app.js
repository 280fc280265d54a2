// The playground: builds the options of one optimise call from the form, sends it to this
// server's real API (POST /v1/upload or /v1/url), and shows the answer next to the original.
"use strict";

const KEY_STORAGE = "pixpress.playground.key";

// The fields each resize strategy reads (http/options/resize.rs, fields_used_by).
const STRATEGY_FIELDS = {
  exact: ["width", "height"],
  portrait: ["height", "enlarge"],
  landscape: ["width", "enlarge"],
  auto: ["width", "height", "enlarge"],
  fit: ["width", "height", "crop_mode"],
  crop: ["width", "height", "crop_mode", "x", "y", "scale"],
  square: ["size", "crop_mode"],
  fill: ["width", "height", "background"],
};
const INTEGER_FIELDS = ["width", "height", "size", "x", "y"];

const $ = (id) => document.getElementById(id);
let originalUrl = null;

function source() {
  return document.querySelector('input[name="source"]:checked').value;
}

function showSourceField() {
  for (const el of document.querySelectorAll("[data-source]")) {
    el.hidden = el.dataset.source !== source();
  }
}

function showStrategyFields() {
  const used = STRATEGY_FIELDS[$("strategy").value] || [];
  for (const el of document.querySelectorAll("[data-field]")) {
    el.hidden = !used.includes(el.dataset.field);
  }
}

function numberOf(id) {
  const text = $(id).value.trim();
  return text === "" ? undefined : Number(text);
}

function resizeOptions() {
  const strategy = $("strategy").value;
  if (!strategy) return undefined;
  const resize = { strategy };
  for (const field of STRATEGY_FIELDS[strategy]) {
    if (INTEGER_FIELDS.includes(field) || field === "scale") {
      const value = numberOf(field);
      if (value !== undefined) resize[field] = value;
    } else if (field === "enlarge") {
      if ($("enlarge").checked) resize.enlarge = true;
    } else {
      const value = $(field).value.trim();
      if (value) resize[field] = value;
    }
  }
  return resize;
}

function metadataOption() {
  const chosen = $("metadata").value;
  if (chosen === "keep") return "keep";
  if (chosen) return [chosen];
  return undefined;
}

/** The JSON options of the call, without the key (it travels in the Authorization header). */
function options() {
  const opts = { lossy: $("lossy").checked };
  const quality = numberOf("quality");
  if (quality !== undefined) opts.quality = quality;
  const target = numberOf("quality_target");
  if (target !== undefined) opts.quality_target = target;
  if ($("format").value) opts.format = $("format").value;
  const metadata = metadataOption();
  if (metadata !== undefined) opts.metadata = metadata;
  const resize = resizeOptions();
  if (resize) opts.resize = resize;
  return opts;
}

function shellQuote(text) {
  return "'" + text.replace(/'/g, "'\\''") + "'";
}

/** A curl line that makes the same call; the key is left as $PIXPRESS_KEY so it is never shown. */
function curlLine(call) {
  const base = location.origin;
  const auth = '-H "Authorization: Bearer $PIXPRESS_KEY"';
  if (call.kind === "upload") {
    return `curl ${auth} \\\n     -F ${shellQuote("image=@" + call.fileName)} \\\n     -F ${shellQuote(
      "data=" + JSON.stringify(call.options),
    )} \\\n     ${base}/v1/upload`;
  }
  const body = JSON.stringify({ url: call.url, ...call.options });
  return `curl ${auth} -H 'Content-Type: application/json' \\\n     -d ${shellQuote(body)} \\\n     ${base}/v1/url`;
}

function describeCall() {
  const opts = options();
  if (source() === "url") {
    const url = $("url").value.trim();
    if (!url) throw new Error("Enter the URL of an image.");
    return { kind: "url", url, options: opts };
  }
  const file = $("file").files[0];
  if (!file) throw new Error("Choose an image file.");
  return { kind: "upload", file, fileName: file.name, options: opts };
}

async function send(call, key) {
  const headers = {};
  if (key) headers.Authorization = "Bearer " + key;
  if (call.kind === "upload") {
    const form = new FormData();
    form.append("image", call.file, call.file.name);
    form.append("data", JSON.stringify(call.options));
    return fetch("/v1/upload", { method: "POST", headers, body: form });
  }
  headers["Content-Type"] = "application/json";
  const body = JSON.stringify({ url: call.url, ...call.options });
  return fetch("/v1/url", { method: "POST", headers, body });
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MB`;
}

function showError(message) {
  $("result").hidden = false;
  $("answer").hidden = true;
  $("error").hidden = false;
  $("error").textContent = message;
}

function showAnswer(answer) {
  // A resize array answers with `results`; the playground sends one resize, so one answer.
  const one = answer.results ? answer.results[0] : answer;
  const saved = one.bytes_saved;
  const percent = one.original_size > 0 ? (100 * saved) / one.original_size : 0;
  $("original").textContent = `${formatBytes(one.original_size)} (${one.original_size} bytes), ${one.original_width}×${one.original_height}`;
  $("final").textContent = `${formatBytes(one.final_size)} (${one.final_size} bytes), ${one.final_width}×${one.final_height}`;
  $("saved").textContent = `${saved} bytes (${percent.toFixed(1)}%)`;
  $("out-format").textContent = one.format;
  $("out-quality").textContent = one.quality === undefined ? "— (lossless)" : String(one.quality);
  $("out-ssim").textContent = one.ssimulacra2 === undefined ? "—" : one.ssimulacra2.toFixed(2);
  $("expires").textContent = one.expires_at;
  const warnings = [...(answer.results ? answer.warnings : []), ...one.warnings];
  $("warnings").replaceChildren(
    ...warnings.map((w) => {
      const li = document.createElement("li");
      li.textContent = `${w.code}: ${w.message}`;
      return li;
    }),
  );
  // At most one device pixel per result pixel, so the comparison never shows upscaling blur.
  const widest = `${one.final_width / (window.devicePixelRatio || 1)}px`;
  $("compare").style.aspectRatio = `${one.final_width} / ${one.final_height}`;
  $("compare").style.maxWidth = widest;
  $("slider").style.maxWidth = widest;
  $("after").src = one.url;
  $("download").href = one.url;
  $("error").hidden = true;
  $("answer").hidden = false;
  $("result").hidden = false;
  setSlider(50);
}

function showOriginal(call) {
  if (originalUrl) URL.revokeObjectURL(originalUrl);
  originalUrl = null;
  if (call.kind === "upload") {
    originalUrl = URL.createObjectURL(call.file);
    $("before").src = originalUrl;
  } else {
    $("before").src = call.url;
  }
}

async function submit(event) {
  event.preventDefault();
  let call;
  try {
    call = describeCall();
  } catch (e) {
    showError(e.message);
    return;
  }
  const key = $("key").value.trim();
  $("curl").textContent = curlLine(call);
  $("curl-box").hidden = false;
  $("status").textContent = "Optimising…";
  $("submit").disabled = true;
  try {
    const response = await send(call, key);
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`HTTP ${response.status}: the answer is not JSON`);
    }
    if (!response.ok) {
      const err = body.error || {};
      throw new Error(`${err.message || "request failed"} (HTTP ${response.status}, ${err.code || "error"})`);
    }
    showOriginal(call);
    showAnswer(body);
    $("status").textContent = "Done.";
  } catch (e) {
    showError(e.message);
    $("status").textContent = "Failed.";
  } finally {
    $("submit").disabled = false;
  }
}

function setSlider(percent) {
  // Rounded to the range input's step, so the split and the input always agree.
  const clamped = Math.round(10 * Math.min(100, Math.max(0, percent))) / 10;
  $("slider").value = String(clamped);
  $("compare").style.setProperty("--split", `${clamped}%`);
}

function dragSlider(event) {
  const box = $("compare").getBoundingClientRect();
  setSlider((100 * (event.clientX - box.left)) / box.width);
}

function wireSlider() {
  const compare = $("compare");
  compare.addEventListener("pointerdown", (event) => {
    compare.setPointerCapture(event.pointerId);
    dragSlider(event);
  });
  compare.addEventListener("pointermove", (event) => {
    if (compare.hasPointerCapture(event.pointerId)) dragSlider(event);
  });
  $("slider").addEventListener("input", () => setSlider(Number($("slider").value)));
}

function wireKey() {
  const stored = localStorage.getItem(KEY_STORAGE);
  if (stored) $("key").value = stored;
  $("key").addEventListener("input", () => {
    const key = $("key").value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  });
}

function wireCopy() {
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("curl").textContent);
      $("copy").textContent = "Copied";
    } catch {
      // No clipboard permission (plain http, or denied): select the text for a manual copy.
      getSelection().selectAllChildren($("curl"));
      $("copy").textContent = "Selected — press Ctrl+C";
    }
    setTimeout(() => ($("copy").textContent = "Copy"), 2000);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireKey();
  wireSlider();
  wireCopy();
  for (const radio of document.querySelectorAll('input[name="source"]')) {
    radio.addEventListener("change", showSourceField);
  }
  $("strategy").addEventListener("change", showStrategyFields);
  $("form").addEventListener("submit", submit);
  showSourceField();
  showStrategyFields();
});
