// The Jobs page: upload a video to a signed URL, submit a job, follow its progress,
// download the results and look at one sampled frame with its detections drawn.
import {
  $,
  ApiError,
  api,
  clearError,
  config,
  formatBytes,
  formatDate,
  h,
  refreshCredits,
  setBusy,
  showError,
} from "./common.js";
import { uploadToSignedUrl } from "./signed_upload.js";

const jobsConfig = config.capabilities.jobs;
const POLL_MS = 1000;
const STATUS = {
  0: ["succeeded", "ok"],
  1: ["running", "run"],
  2: ["failed", "fail"],
  3: ["cancelled", "warn"],
};
const PALETTE = ["#ffd43b", "#ff6b6b", "#4dabf7", "#69db7c", "#f783ac", "#ffa94d"];
let current = null; // {jobId, timer, results}
let recentTimer = null;

function badge(element, status, jobStatus) {
  const [label, kind] = STATUS[status] || [jobStatus, ""];
  element.textContent = status === 1 ? jobStatus || label : label;
  element.className = `badge ${kind}`;
}

// ---- new job --------------------------------------------------------------------

async function uploadVideo(file) {
  const block = $("job-upload");
  block.hidden = false;
  const url = await uploadToSignedUrl(file, (loaded, total) => {
    const percent = total ? Math.floor((100 * loaded) / total) : 100;
    $("job-upload-bar").value = percent;
    $("job-upload-percent").textContent = `${percent}%`;
    $("job-upload-label").textContent = `Uploading the video… ${formatBytes(loaded)} of ${formatBytes(total)}`;
  });
  block.hidden = true;
  return url;
}

async function submitJob(event) {
  event.preventDefault();
  const errorBox = $("job-error");
  clearError(errorBox);
  const input = $("job-file");
  const file = input.files[0];
  const chosen = Array.from(document.querySelectorAll('input[name="models"]:checked'));
  const fps = Number($("job-fps").value);
  let problem = null;
  if (!file) problem = ["Choose a video first.", input];
  else if (file.size > jobsConfig.max_upload_bytes) problem = [`The video is larger than ${formatBytes(jobsConfig.max_upload_bytes)}.`, input];
  else if (chosen.length === 0) problem = ["Pick at least one model.", document.querySelector('input[name="models"]')];
  else if (!(fps > 0)) problem = ["Frames per second must be more than 0.", $("job-fps")];
  if (problem) {
    showError(errorBox, problem[0]);
    if (problem[1]) problem[1].focus();
    return;
  }
  const button = $("job-submit");
  setBusy(button, true);
  try {
    const inputUrl = await uploadVideo(file);
    const models = chosen.map((box) => ({ model_id: box.value, inference_type: box.dataset.type }));
    const submitted = await api("POST", "/videoinfer/", {
      json: { input_url: inputUrl, infer_fps: fps, models },
    });
    input.value = "";
    follow(submitted.job_id);
    loadRecent();
  } catch (error) {
    $("job-upload").hidden = true;
    showError(errorBox, error);
  } finally {
    setBusy(button, false);
  }
}

// ---- one job ----------------------------------------------------------------------

function follow(jobId) {
  if (current && current.timer) clearTimeout(current.timer);
  current = { jobId, timer: null, results: null };
  $("job-empty").hidden = true;
  $("job-view").hidden = false;
  $("job-results").hidden = true;
  $("job-failure").hidden = true;
  $("job-download").hidden = true;
  $("job-id").textContent = `Job ${jobId}`;
  poll(jobId);
}

async function poll(jobId) {
  if (!current || current.jobId !== jobId) return;
  let job;
  try {
    job = await api("GET", `/videoinfer/?job_id=${encodeURIComponent(jobId)}`);
  } catch (error) {
    if (error instanceof ApiError && error.retryable) {
      current.timer = setTimeout(() => poll(jobId), (error.retryAfter || 2) * 1000);
      return;
    }
    showError($("job-failure"), error);
    return;
  }
  if (!current || current.jobId !== jobId) return;
  showJob(job);
  if (job.status === 1) {
    current.timer = setTimeout(() => poll(jobId), POLL_MS);
  } else {
    loadRecent();
    refreshCredits();
    if (job.status === 0) await showResults(job);
  }
}

function showJob(job) {
  badge($("job-status"), job.status, job.job_status);
  const percent = Math.round((job.progress || 0) * 100);
  $("job-progress").value = job.status === 0 ? 100 : percent;
  const frames = job.frames_total ? `${job.frames_done} of ${job.frames_total} frames` : `${job.frames_done} frames`;
  $("job-progress-text").textContent = `${job.status === 0 ? 100 : percent}% · ${frames}`;
  $("job-cancel").hidden = job.status !== 1;
  if (job.status === 2 || job.status === 3) {
    $("job-failure").textContent = job.error_message || job.message;
    $("job-failure").hidden = false;
  }
}

async function showResults(job) {
  const link = $("job-download");
  link.href = job.output_signed_url;
  link.setAttribute("download", `${job.job_id}.json`);
  link.hidden = false;
  let results;
  try {
    results = await api("GET", job.output_signed_url);
  } catch (error) {
    showError($("job-failure"), error);
    return;
  }
  current.results = results;
  const modelIds = Object.keys(results).filter((k) => k !== "frame_offsets" && k !== "time_offsets");
  const facts = [h("div", {}, h("dt", {}, "Frames"), h("dd", {}, String(results.frame_offsets.length)))];
  for (const id of modelIds) {
    const entries = results[id];
    const detections = entries.reduce((sum, e) => sum + (e && e.predictions ? e.predictions.length : 0), 0);
    const captions = entries.filter((e) => e && typeof e.text === "string").length;
    const value = captions ? `${captions} captions` : `${detections} detections`;
    facts.push(h("div", {}, h("dt", {}, id), h("dd", {}, value)));
  }
  $("job-facts").replaceChildren(...facts);
  $("job-results").hidden = false;
  const slider = $("frame-slider");
  slider.max = String(Math.max(0, results.frame_offsets.length - 1));
  slider.value = String(busiestFrame(results, modelIds));
  await drawFrame(Number(slider.value));
}

function busiestFrame(results, modelIds) {
  let best = 0;
  let bestCount = -1;
  results.frame_offsets.forEach((_, i) => {
    const count = modelIds.reduce((sum, id) => {
      const entry = results[id][i];
      return sum + (entry && entry.predictions ? entry.predictions.length : 0);
    }, 0);
    if (count > bestCount) {
      best = i;
      bestCount = count;
    }
  });
  return best;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("The frame could not be loaded."));
    image.src = url;
  });
}

async function drawFrame(index) {
  const results = current && current.results;
  if (!results) return;
  const jobId = current.jobId;
  const offset = results.frame_offsets[index];
  const caption = $("frame-caption");
  caption.textContent = `Frame ${offset} at ${results.time_offsets[index].toFixed(2)} s — loading…`;
  let image;
  try {
    image = await loadImage(
      `${config.base}/videoinfer/frame?job_id=${encodeURIComponent(jobId)}&frame_offset=${offset}`,
    );
  } catch (error) {
    caption.textContent = error.message;
    return;
  }
  if (!current || current.jobId !== jobId || Number($("frame-slider").value) !== index) return;
  const canvas = $("frame-canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const line = Math.max(2, Math.round(image.naturalWidth / 320));
  ctx.lineWidth = line;
  ctx.font = `${Math.max(12, line * 7)}px system-ui, sans-serif`;
  const described = [];
  const modelIds = Object.keys(results).filter((k) => k !== "frame_offsets" && k !== "time_offsets");
  modelIds.forEach((id, m) => {
    const entry = results[id][index];
    if (!entry) return;
    if (typeof entry.text === "string") {
      described.push(`${id}: “${entry.text.slice(0, 120)}”`);
      return;
    }
    const color = PALETTE[m % PALETTE.length];
    const sx = entry.image ? image.naturalWidth / entry.image.width : 1;
    const sy = entry.image ? image.naturalHeight / entry.image.height : 1;
    for (const p of entry.predictions || []) {
      const x = (p.x - p.width / 2) * sx;
      const y = (p.y - p.height / 2) * sy;
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, p.width * sx, p.height * sy);
      const label = `${p.class} ${Math.round(p.confidence * 100)}%`;
      const textWidth = ctx.measureText(label).width + line * 4;
      const textHeight = line * 10;
      ctx.fillStyle = color;
      ctx.fillRect(x, Math.max(0, y - textHeight), textWidth, textHeight);
      ctx.fillStyle = "#111";
      ctx.fillText(label, x + line * 2, Math.max(textHeight, y) - line * 2.5);
    }
    const count = (entry.predictions || []).length;
    described.push(`${id}: ${count} ${count === 1 ? "box" : "boxes"}`);
  });
  caption.textContent = `Frame ${offset} at ${results.time_offsets[index].toFixed(2)} s — ${described.join("; ") || "no results"}`;
}

async function cancelJob() {
  if (!current) return;
  const button = $("job-cancel");
  setBusy(button, true);
  try {
    const job = await api("DELETE", `/videoinfer/?job_id=${encodeURIComponent(current.jobId)}`);
    showJob(job);
    loadRecent();
  } catch (error) {
    showError($("job-failure"), error);
  } finally {
    setBusy(button, false);
  }
}

// ---- recent jobs -------------------------------------------------------------------

async function loadRecent() {
  clearTimeout(recentTimer);
  let jobs;
  try {
    ({ jobs } = await api("GET", "/api/jobs?limit=20"));
  } catch {
    recentTimer = setTimeout(loadRecent, 5000);
    return;
  }
  $("recent-empty").hidden = jobs.length > 0;
  $("recent-wrap").hidden = jobs.length === 0;
  $("recent-body").replaceChildren(...jobs.map(recentRow));
  if (!current && jobs.length > 0) follow(jobs[0].job_id); // coming back: show the latest
  if (jobs.some((job) => job.status === 1)) recentTimer = setTimeout(loadRecent, 3000);
}

function recentRow(job) {
  const status = h("span", {});
  badge(status, job.status, job.state);
  const done = job.frames_total ? `${job.frames_done} / ${job.frames_total}` : String(job.frames_done);
  const view = h("button", { type: "button", className: "btn btn-small", "aria-label": `View job ${job.job_id}` }, "View");
  view.addEventListener("click", () => {
    follow(job.job_id);
    $("job-view-title").scrollIntoView({ behavior: "smooth", block: "start" });
  });
  return h(
    "tr",
    { "data-job-id": job.job_id },
    h("td", {}, formatDate(job.created_at, true)),
    h("td", { className: "hide-phone" }, (job.models || []).join(", ")),
    h("td", {}, status),
    h("td", { className: "num hide-phone" }, done),
    h("td", { className: "num" }, view),
  );
}

if (jobsConfig) {
  $("job-form").addEventListener("submit", submitJob);
  $("job-cancel").addEventListener("click", cancelJob);
  let pending = null;
  $("frame-slider").addEventListener("input", (event) => {
    clearTimeout(pending);
    pending = setTimeout(() => drawFrame(Number(event.target.value)), 150);
  });
  loadRecent();
}
