// The Story page: images or a video → an English story and its translation.
import {
  $,
  api,
  clearError,
  config,
  formatSeconds,
  randomId,
  refreshCredits,
  setBusy,
  showError,
} from "./common.js";

const story = config.capabilities.story;
const form = document.getElementById("story-form");
const VIDEO = /\.(mp4|mov|m4v|mkv|webm)$/i;

function languageName(tag) {
  const match = story.languages.find((lang) => lang.tag === tag);
  return match ? match.name : tag;
}

function checkFiles(files) {
  if (files.length === 0) return "Choose one or more images, or one video.";
  const videos = files.filter((f) => f.type.startsWith("video/") || VIDEO.test(f.name));
  if (videos.length > 0 && files.length > 1) return "Choose either images or exactly one video, not both.";
  if (videos.length === 0 && files.length > story.max_images) return `Choose at most ${story.max_images} images.`;
  const limit = videos.length ? story.max_video_bytes : story.max_image_bytes;
  const large = files.find((f) => f.size > limit);
  if (large) return `${large.name} is larger than the limit for its type.`;
  return null;
}

if (form) {
  const submit = $("story-submit");
  const errorBox = $("story-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(errorBox);
    const input = $("story-files");
    const files = Array.from(input.files);
    const problem = checkFiles(files);
    if (problem) {
      input.setAttribute("aria-invalid", "true");
      showError(errorBox, problem);
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    const data = new FormData();
    for (const file of files) data.append("files", file, file.name);
    const prompt = $("story-prompt").value.trim();
    if (prompt) data.append("prompt", prompt);
    const language = $("story-language").value;
    data.append("language", language);
    setBusy(submit, true);
    const started = performance.now();
    try {
      const { body, headers } = await api("POST", "/analyze/", {
        form: data,
        withHeaders: true,
        headers: { "Idempotency-Key": randomId() },
      });
      showStory(body, headers.get("x-story-truncated"), (performance.now() - started) / 1000, language);
      refreshCredits();
    } catch (error) {
      showError(errorBox, error);
    } finally {
      setBusy(submit, false);
    }
  });
}

function showStory(body, truncated, seconds, requested) {
  $("story-empty").hidden = true;
  $("story-result").hidden = false;
  $("story-truncated").hidden = !truncated;
  $("story-english").textContent = body.english;
  const tag = body.language || requested;
  const translation = body.translation ?? body.thai ?? "";
  const target = $("story-translation");
  target.textContent = translation;
  target.setAttribute("lang", tag);
  $("story-tr-title").textContent = languageName(tag);
  $("story-input-tokens").textContent = String(body.token_usage.input_tokens);
  $("story-output-tokens").textContent = String(body.token_usage.output_tokens);
  $("story-time").textContent = formatSeconds(seconds);
}
