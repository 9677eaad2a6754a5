// The Long videos page: upload a video (or paste a URL), preflight and start a summary
// job, follow it live over Server-Sent Events (chunk captions as they finish, then
// chapters and the summary), play the video with the chapters as a clickable timeline,
// download the subtitles, cancel, and reopen earlier summaries.
//
// Every text from the server goes in with textContent (through h()), never as HTML.
import {
  $,
  ApiError,
  api,
  base,
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
const API = "/api/video_summaries";
const POLL_MS = 2000;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const BADGE = { queued: "", running: "run", succeeded: "ok", failed: "fail", cancelled: "warn" };

/** The signed URL of the file already uploaded (preflight then start: one upload). */
let uploaded = null; // {key, url}
/** The object URL of the chosen file, and the video source of each job started here. */
let chosenSource = null;
const sources = new Map();
const languages = new Map(); // job id → language tag (translations get lang=)
/** The summary on view. */
let current = null; // {jobId, stream, timer, chunks: Map, chapters, translated, status}
let recentTimer = null;

// ---- small helpers --------------------------------------------------------------------

function jobPath(jobId, rest = "") {
  return `${API}/${encodeURIComponent(jobId)}${rest}`;
}

/** 75.5 → "1:15", 3723 → "1:02:03". */
function clock(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

function eta(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "unknown";
  return seconds < 60 ? `${Math.max(1, Math.round(seconds))} s` : `about ${clock(seconds)}`;
}

function badge(element, jobStatus) {
  element.textContent = jobStatus;
  element.className = `badge ${BADGE[jobStatus] || ""}`;
}

function fileKey(file) {
  return `${file.name}:${file.size}:${file.lastModified}`;
}

// ---- the form: upload, preflight, start -------------------------------------------------

function readForm() {
  const number = (id) => {
    const value = $(id).value.trim();
    return value === "" ? null : Number(value);
  };
  const body = {
    chunk_s: number("sum-chunk"),
    overlap_s: number("sum-overlap") ?? 0,
    frames_per_chunk: number("sum-frames"),
  };
  const text = {
    language: $("sum-language").value,
    audio: $("sum-audio").value,
    caption_prompt: $("sum-caption-prompt").value.trim(),
    summary_prompt: $("sum-summary-prompt").value.trim(),
  };
  for (const [name, value] of Object.entries(text)) if (value) body[name] = value;
  const maxCredits = number("sum-max-credits");
  if (maxCredits !== null) body.max_credits = maxCredits;
  const file = $("sum-file").files[0] || null;
  const url = $("sum-url").value.trim();
  let problem = null;
  if (!file && !url) problem = ["Choose a video file or paste its URL.", "sum-file"];
  else if (file && url) problem = ["Choose a file or paste a URL, not both.", "sum-url"];
  else if (file && file.size > jobsConfig.max_upload_bytes) {
    problem = [`The video is larger than ${formatBytes(jobsConfig.max_upload_bytes)}.`, "sum-file"];
  } else if (url && !/^https?:\/\/\S+$/i.test(url)) problem = ["The URL must start with http:// or https://.", "sum-url"];
  else if (!(body.chunk_s > 0)) problem = ["Chunk length must be more than 0 seconds.", "sum-chunk"];
  else if (!(body.overlap_s >= 0 && body.overlap_s < body.chunk_s / 2)) {
    problem = ["The overlap must be at least 0 and less than half a chunk.", "sum-overlap"];
  } else if (!(Number.isInteger(body.frames_per_chunk) && body.frames_per_chunk > 0)) {
    problem = ["Frames per chunk must be a whole number above 0.", "sum-frames"];
  } else if (maxCredits !== null && !(Number.isInteger(maxCredits) && maxCredits >= 0)) {
    problem = ["The credit limit must be a whole number.", "sum-max-credits"];
  }
  return { body, file, url, problem };
}

async function inputUrl(file, url) {
  if (!file) return url;
  if (uploaded && uploaded.key === fileKey(file)) return uploaded.url;
  const block = $("sum-upload");
  block.hidden = false;
  try {
    const signed = await uploadToSignedUrl(file, (loaded, total) => {
      const percent = total ? Math.floor((100 * loaded) / total) : 100;
      $("sum-upload-bar").value = percent;
      $("sum-upload-percent").textContent = `${percent}%`;
      $("sum-upload-label").textContent = `Uploading the video… ${formatBytes(loaded)} of ${formatBytes(total)}`;
    });
    uploaded = { key: fileKey(file), url: signed };
    return signed;
  } finally {
    block.hidden = true;
  }
}

/** Validate, upload if needed; null (and the error shown) when the form is not ready. */
async function prepare() {
  const errorBox = $("sum-error");
  clearError(errorBox);
  const { body, file, url, problem } = readForm();
  if (problem) {
    showError(errorBox, problem[0]);
    $(problem[1]).focus();
    return null;
  }
  body.input_url = await inputUrl(file, url);
  return { body, videoSource: file ? chosenSource : url };
}

async function withButton(button, work) {
  setBusy(button, true);
  try {
    await work();
  } catch (error) {
    showError($("sum-error"), error);
  } finally {
    setBusy(button, false);
  }
}

function preflight() {
  return withButton($("sum-preflight"), async () => {
    const ready = await prepare();
    if (!ready) return;
    const estimate = await api("POST", `${API}/preflight`, { json: ready.body });
    $("est-chunks").textContent = String(estimate.chunks);
    $("est-frames").textContent = String(estimate.frames);
    $("est-duration").textContent = clock(estimate.duration_s);
    $("est-credits").textContent = String(estimate.estimated_credits);
    $("est-eta").textContent = eta(estimate.eta_s);
    $("sum-estimate").hidden = false;
  });
}

function start(event) {
  event.preventDefault();
  return withButton($("sum-start"), async () => {
    const ready = await prepare();
    if (!ready) return;
    const started = await api("POST", API, { json: ready.body });
    if (ready.videoSource) sources.set(started.job_id, ready.videoSource);
    if (ready.body.language) languages.set(started.job_id, ready.body.language);
    await follow(started.job_id);
    refreshCredits();
    loadRecent();
  });
}

function chooseFile() {
  const file = $("sum-file").files[0];
  uploaded = null;
  $("sum-estimate").hidden = true;
  if (chosenSource && ![...sources.values()].includes(chosenSource)) URL.revokeObjectURL(chosenSource);
  chosenSource = file ? URL.createObjectURL(file) : null;
}

// ---- one summary ------------------------------------------------------------------------

function stop() {
  if (!current) return;
  if (current.stream) current.stream.close();
  clearTimeout(current.timer);
  current.stream = null;
}

function showVideo(source) {
  const video = $("sum-video");
  if (source) {
    if (video.getAttribute("src") !== source) video.src = source;
  } else {
    video.removeAttribute("src");
    video.load();
  }
  video.hidden = !source;
  $("sum-local-field").hidden = Boolean(source);
}

async function follow(jobId) {
  stop();
  current = { jobId, stream: null, timer: null, chunks: new Map(), chapters: [], translated: false, status: null };
  $("sum-empty").hidden = true;
  $("sum-view").hidden = false;
  $("sum-id").textContent = `Summary ${jobId}`;
  for (const id of ["sum-failure", "sum-summary-block", "sum-chapters-block", "sum-downloads", "sum-timeline"]) {
    $(id).hidden = true;
  }
  $("sum-captions").replaceChildren();
  $("sum-captions-empty").hidden = false;
  $("sum-transcript").replaceChildren();
  $("sum-transcript-block").hidden = true;
  $("sum-audio-note").hidden = true;
  $("sum-timeline").replaceChildren();
  $("sum-chapters").replaceChildren();
  $("sum-local").value = "";
  showVideo(sources.get(jobId) || null);
  let status;
  try {
    status = await api("GET", jobPath(jobId));
  } catch (error) {
    showError($("sum-failure"), error);
    return;
  }
  if (!current || current.jobId !== jobId) return;
  showStatus(status);
  if (status.result) showResult(status.result);
  if (TERMINAL.has(status.job_status)) finish(status);
  else listen(jobId);
}

/** Follow the job's event stream; on a refused stream, poll the status instead. */
function listen(jobId) {
  const stream = new EventSource(`${base}${jobPath(jobId, "/events")}`);
  current.stream = stream;
  const on = (name, handle) =>
    stream.addEventListener(name, (event) => {
      if (!current || current.stream !== stream) return;
      handle(event);
    });
  on("status", (event) => showStatus(JSON.parse(event.data)));
  on("chunk", (event) => addChunk(JSON.parse(event.data)));
  on("chapters", (event) => showChapters(JSON.parse(event.data)));
  on("summary", (event) => showSummary(JSON.parse(event.data)));
  on("done", (event) => {
    stream.close();
    finish(JSON.parse(event.data));
  });
  // "error" is both the job's error event (with data) and a broken connection (without):
  // the browser reconnects by itself (sending Last-Event-ID) unless the stream was refused.
  on("error", (event) => {
    if (event.data) {
      stream.close();
      finish(JSON.parse(event.data));
    } else if (stream.readyState === EventSource.CLOSED) {
      current.stream = null;
      current.timer = setTimeout(() => poll(jobId), POLL_MS);
    }
  });
}

async function poll(jobId) {
  if (!current || current.jobId !== jobId) return;
  let status;
  try {
    status = await api("GET", jobPath(jobId));
  } catch (error) {
    if (error instanceof ApiError && error.retryable) {
      current.timer = setTimeout(() => poll(jobId), (error.retryAfter || 2) * 1000);
    } else {
      showError($("sum-failure"), error);
    }
    return;
  }
  if (!current || current.jobId !== jobId) return;
  showStatus(status);
  if (status.result) showResult(status.result);
  if (TERMINAL.has(status.job_status)) finish(status);
  else current.timer = setTimeout(() => poll(jobId), POLL_MS);
}

function showStatus(status) {
  current.status = status;
  badge($("sum-status"), status.job_status);
  const done = status.chunks_done || 0;
  const total = status.chunks_total;
  const finished = status.job_status === "succeeded";
  const percent = finished ? 100 : Math.round((status.progress || 0) * 100);
  $("sum-progress").value = percent;
  const parts = [`${percent}%`, total === null || total === undefined ? `${done} chunks` : `${done} of ${total} chunks`];
  if (!TERMINAL.has(status.job_status)) parts.push(`${eta(status.eta_s)} left`);
  $("sum-progress-text").textContent = parts.join(" · ");
  $("sum-cancel").hidden = TERMINAL.has(status.job_status);
  if (status.job_status === "failed" || status.job_status === "cancelled") {
    const message = status.error_message || (status.job_status === "cancelled" ? "The summary was cancelled." : "The summary failed.");
    showError($("sum-failure"), message);
  }
}

function showResult(result) {
  if (result.language) {
    current.translated = true;
    languages.set(current.jobId, result.language);
  }
  for (const chunk of result.chunks || []) addChunk(chunk);
  if (result.chapters && result.chapters.length) showChapters(result.chapters);
  if (result.summary) showSummary(result);
}

function finish(status) {
  stop();
  showStatus(status);
  if (status.result) showResult(status.result);
  if (status.job_status === "succeeded") showDownloads(current.jobId);
  refreshCredits();
  loadRecent();
}

function seek(seconds) {
  const video = $("sum-video");
  if (video.hidden) return;
  video.currentTime = seconds;
  highlight();
}

function timeButton(startS, endS, label, className) {
  return h(
    "button",
    { type: "button", className, title: `${clock(startS)}–${clock(endS)} ${label}`, onclick: () => seek(startS) },
    h("span", { className: "time" }, `${clock(startS)}–${clock(endS)}`),
    " ",
    h("span", { className: "label" }, label),
  );
}

/** A translated text, marked with its language when known. */
function translationText(text) {
  return h("p", { className: "translation", lang: languages.get(current.jobId) || null }, text);
}

function addChunk(chunk) {
  if (current.chunks.has(chunk.index)) return;
  current.chunks.set(chunk.index, chunk);
  const frames = chunk.frame_indices.length;
  if (chunk.translation !== undefined) current.translated = true;
  const item = h(
    "li",
    { "data-index": String(chunk.index), "data-start": String(chunk.start_s) },
    timeButton(chunk.start_s, chunk.end_s, chunk.caption, "seek caption"),
    chunk.translation ? translationText(chunk.translation) : null,
    h("p", { className: "note" }, `${frames} ${frames === 1 ? "frame" : "frames"} · ${chunk.effective_fps} fps`),
  );
  const list = $("sum-captions");
  const after = Array.from(list.children).find((li) => Number(li.dataset.index) > chunk.index);
  list.insertBefore(item, after || null);
  $("sum-captions-empty").hidden = true;
  addSpeech(chunk);
}

/** The chunk's speech under the timeline: one clickable line per segment, in time order. */
function addSpeech(chunk) {
  if (chunk.audio_skipped) {
    const note = $("sum-audio-note");
    note.textContent = `Audio skipped: ${chunk.audio_skipped}`;
    note.hidden = false;
    $("sum-transcript-block").hidden = false;
  }
  if (!chunk.transcript || chunk.transcript.length === 0) return;
  current.spoken = true;
  const list = $("sum-transcript");
  for (const segment of chunk.transcript) {
    const item = h(
      "li",
      { "data-start": String(segment.start_s) },
      timeButton(segment.start_s, segment.end_s, segment.text, "seek speech"),
    );
    const after = Array.from(list.children).find((li) => Number(li.dataset.start) > segment.start_s);
    list.insertBefore(item, after || null);
  }
  $("sum-transcript-block").hidden = false;
}

function showChapters(chapters) {
  current.chapters = chapters;
  const timeline = $("sum-timeline");
  timeline.replaceChildren(
    ...chapters.map((chapter, i) => {
      const segment = h(
        "button",
        {
          type: "button",
          className: "segment",
          "data-index": String(i),
          title: `${clock(chapter.start_s)}–${clock(chapter.end_s)} ${chapter.title}`,
          "aria-label": `Chapter ${i + 1}: ${chapter.title}, from ${clock(chapter.start_s)}`,
          onclick: () => seek(chapter.start_s),
        },
        chapter.title,
      );
      // Proportional to its length (CSSOM, allowed by the page's CSP; no style attribute).
      segment.style.flexGrow = String(Math.max(0.001, chapter.end_s - chapter.start_s));
      return segment;
    }),
  );
  timeline.hidden = chapters.length === 0;
  $("sum-chapters").replaceChildren(
    ...chapters.map((chapter, i) =>
      h(
        "li",
        { "data-index": String(i) },
        timeButton(chapter.start_s, chapter.end_s, chapter.title, "seek chapter"),
        chapter.title_translation ? translationText(chapter.title_translation) : null,
        h("p", {}, chapter.description),
        chapter.description_translation ? translationText(chapter.description_translation) : null,
      ),
    ),
  );
  $("sum-chapters-block").hidden = chapters.length === 0;
  highlight();
}

function showSummary(data) {
  $("sum-summary").textContent = data.summary || "";
  const translation = $("sum-summary-translation");
  translation.textContent = data.summary_translation || "";
  translation.hidden = !data.summary_translation;
  const lang = languages.get(current.jobId);
  if (lang) translation.setAttribute("lang", lang);
  else translation.removeAttribute("lang");
  if (data.summary_translation) current.translated = true;
  $("sum-summary-block").hidden = false;
}

/** Mark the chapter and caption the video is in. */
function highlight() {
  if (!current) return;
  const time = $("sum-video").currentTime;
  const inside = (start, end) => time >= start && time < end;
  const chapter = current.chapters.findIndex((c, i) =>
    inside(c.start_s, i === current.chapters.length - 1 ? Infinity : c.end_s),
  );
  for (const list of [$("sum-timeline"), $("sum-chapters")]) {
    for (const element of list.children) {
      const on = Number(element.dataset.index) === chapter;
      element.classList.toggle("current", on);
      if (on) element.setAttribute("aria-current", "true");
      else element.removeAttribute("aria-current");
    }
  }
  let caption = null;
  for (const [index, chunk] of current.chunks) if (chunk.start_s <= time) caption = index;
  for (const item of $("sum-captions").children) {
    item.classList.toggle("current", Number(item.dataset.index) === caption);
  }
}

function showDownloads(jobId) {
  const link = (label, file, query = "") =>
    h("li", {}, h("a", { href: `${base}${jobPath(jobId, `/${file}`)}${query}`, download: true, "data-export": `${file}${query}` }, label));
  const links = [
    link("Captions (SRT)", "export.srt"),
    link("Captions (WebVTT)", "export.vtt"),
    link("Chapters (WebVTT)", "export.vtt", "?track=chapters"),
    link("Everything (JSON)", "export.json"),
  ];
  if (current.spoken) {
    links.push(
      link("Speech (SRT)", "export.srt", "?track=speech"),
      link("Speech (WebVTT)", "export.vtt", "?track=speech"),
    );
  }
  if (current.translated) {
    links.push(
      link("Bilingual captions (SRT)", "export.srt", "?variant=bilingual"),
      link("Bilingual captions (WebVTT)", "export.vtt", "?variant=bilingual"),
    );
  }
  $("sum-download-list").replaceChildren(...links);
  $("sum-downloads").hidden = false;
}

async function cancel() {
  if (!current) return;
  const jobId = current.jobId;
  const button = $("sum-cancel");
  setBusy(button, true);
  try {
    const status = await api("DELETE", jobPath(jobId));
    if (current && current.jobId === jobId) finish(status);
  } catch (error) {
    showError($("sum-failure"), error);
  } finally {
    setBusy(button, false);
  }
}

function playLocalCopy() {
  const file = $("sum-local").files[0];
  if (!file || !current) return;
  const source = URL.createObjectURL(file);
  sources.set(current.jobId, source);
  showVideo(source);
}

// ---- earlier summaries ------------------------------------------------------------------

async function loadRecent() {
  clearTimeout(recentTimer);
  let summaries;
  try {
    ({ summaries } = await api("GET", API));
  } catch {
    recentTimer = setTimeout(loadRecent, 5000);
    return;
  }
  $("sum-recent-empty").hidden = summaries.length > 0;
  $("sum-recent-wrap").hidden = summaries.length === 0;
  $("sum-recent-body").replaceChildren(...summaries.map(recentRow));
  if (summaries.some((s) => !TERMINAL.has(s.job_status))) recentTimer = setTimeout(loadRecent, 3000);
}

function recentRow(summary) {
  const status = h("span", {});
  badge(status, summary.job_status);
  const total = summary.chunks_total;
  const open = h(
    "button",
    { type: "button", className: "btn btn-small", "aria-label": `Open summary ${summary.job_id}` },
    "Open",
  );
  open.addEventListener("click", () => {
    follow(summary.job_id);
    $("sum-view-title").scrollIntoView({ behavior: "smooth", block: "start" });
  });
  return h(
    "tr",
    { "data-job-id": summary.job_id },
    h("td", {}, formatDate(summary.created_at, true)),
    h("td", {}, status),
    h("td", { className: "num hide-phone" }, total === null || total === undefined ? String(summary.chunks_done || 0) : `${summary.chunks_done} / ${total}`),
    h("td", { className: "num" }, open),
  );
}

if (jobsConfig) {
  $("sum-form").addEventListener("submit", start);
  $("sum-preflight").addEventListener("click", preflight);
  $("sum-file").addEventListener("change", chooseFile);
  $("sum-url").addEventListener("input", () => {
    $("sum-estimate").hidden = true;
  });
  $("sum-cancel").addEventListener("click", cancel);
  $("sum-local").addEventListener("change", playLocalCopy);
  const video = $("sum-video");
  for (const name of ["timeupdate", "seeked", "loadedmetadata"]) video.addEventListener(name, highlight);
  loadRecent();
}
