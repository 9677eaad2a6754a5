// The Analyze page: one request for small files, chunks for large ones.
import {
  $,
  api,
  clearError,
  config,
  formatBytes,
  formatSeconds,
  h,
  randomId,
  send,
  setBusy,
  showCredits,
  showError,
} from "./common.js";
import { ChunkedUpload, UploadPaused } from "./uploader.js";

const form = $("analyze-form");
const fileInput = $("file");
const submit = $("analyze-submit");
const errorBox = $("analyze-error");
const progress = {
  block: $("upload"),
  bar: $("upload-bar"),
  label: $("upload-label"),
  percent: $("upload-percent"),
  detail: $("upload-detail"),
  resume: $("upload-resume"),
  cancel: $("upload-cancel"),
};
const chunkSize = config.capabilities.uploads.chunk_bytes;
let upload = null;
let single = null;
let previewUrl = null;

fileInput.addEventListener("change", () => {
  const preview = $("preview");
  preview.replaceChildren();
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  const file = fileInput.files[0];
  preview.hidden = !file;
  if (!file) return;
  previewUrl = URL.createObjectURL(file);
  const isVideo = file.type.startsWith("video/") || /\.(mp4|mov|m4v|mkv|webm)$/i.test(file.name);
  const analysis = config.capabilities.analysis;
  $("prompt").placeholder = isVideo ? analysis.default_video_prompt : analysis.default_prompt;
  preview.append(
    isVideo
      ? h("video", { src: previewUrl, controls: true, muted: true, preload: "metadata", "aria-label": `Preview of ${file.name}` })
      : h("img", { src: previewUrl, alt: `Preview of ${file.name}` }),
    h("p", { className: "help" }, `${file.name} · ${formatBytes(file.size)}`),
  );
});

function fields() {
  return {
    prompt: $("prompt").value.trim(),
    model_path: $("model").value,
    interval: $("interval").value,
  };
}

function showProgress(sent, total, phase) {
  progress.block.hidden = false;
  if (sent !== null) {
    const percent = total ? Math.floor((sent / total) * 100) : 100;
    progress.bar.value = percent;
    progress.percent.textContent = `${percent}%`;
    progress.detail.textContent = `${formatBytes(sent)} of ${formatBytes(total)}`;
  }
  if (phase === "analysing") {
    progress.label.textContent = "Uploaded. The model is analysing…";
  } else if (phase === "uploading") {
    progress.label.textContent = "Uploading…";
  } else {
    progress.label.textContent = `Network trouble: ${phase}`;
  }
}

function showResult(body, seconds) {
  $("result-empty").hidden = true;
  $("result").hidden = false;
  $("result-text").textContent = body.result || "(the model returned no text)";
  $("result-charged").textContent = String(body.tokens_used);
  $("result-credits").textContent = config.user.isAdmin ? "unlimited" : String(body.remaining_tokens);
  $("result-time").textContent = formatSeconds(seconds);
  showCredits(body.remaining_tokens);
}

async function runUpload() {
  const started = performance.now();
  clearError(errorBox);
  progress.resume.hidden = true;
  progress.cancel.hidden = false;
  setBusy(submit, true);
  try {
    let body;
    if (upload) {
      body = await upload.run();
    } else {
      const file = fileInput.files[0];
      const data = new FormData();
      for (const [name, value] of Object.entries(fields())) if (value) data.append(name, value);
      data.append("file", file, file.name);
      body = await sendSingle(data, file.size);
    }
    showResult(body, (performance.now() - started) / 1000);
    progress.block.hidden = true;
    upload = null;
  } catch (error) {
    if (error.name === "AbortError") {
      progress.block.hidden = true;
      showError(errorBox, "Upload cancelled. Analyze the same file again to resume it.");
      upload = null;
    } else if (error instanceof UploadPaused) {
      progress.label.textContent = "Upload paused";
      showError(errorBox, `${error.message} Your progress is kept: resume when the connection is back.`);
      progress.resume.hidden = false;
    } else {
      showError(errorBox, error);
      progress.block.hidden = true;
      upload = null;
    }
  } finally {
    single = null;
    progress.cancel.hidden = true;
    setBusy(submit, false);
  }
}

async function sendSingle(data, size) {
  single = new AbortController();
  return send("POST", "/api/analyze", data, {
    signal: single.signal,
    headers: { "Idempotency-Key": randomId() },
    onProgress: (loaded, total) =>
      showProgress(Math.min(size, loaded), size, loaded >= total ? "analysing" : "uploading"),
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (!file) {
    fileInput.setAttribute("aria-invalid", "true");
    showError(errorBox, "Choose an image or a video first.");
    fileInput.focus();
    return;
  }
  fileInput.removeAttribute("aria-invalid");
  const interval = Number($("interval").value);
  if (!Number.isInteger(interval) || interval < 1) {
    showError(errorBox, "The frame interval must be a whole number, 1 or more.");
    $("interval").focus();
    return;
  }
  upload = file.size > chunkSize ? new ChunkedUpload(file, chunkSize, fields(), showProgress) : null;
  showProgress(0, file.size, "uploading");
  await runUpload();
});

progress.resume.addEventListener("click", () => runUpload());
progress.cancel.addEventListener("click", () => {
  if (upload) upload.cancel();
  if (single) single.abort();
});
