// Shared by every page: the page's config, API calls (session cookie + CSRF header),
// readable errors, small DOM helpers and the page shell (credits, sign out).

const CONFIG = JSON.parse(document.getElementById("page-config").textContent);

export const config = CONFIG;
export const base = CONFIG.base || "";

/** An API error: HTTP status (0: network), readable message, Retry-After seconds. */
export class ApiError extends Error {
  constructor(status, message, retryAfter = null, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfter = retryAfter;
    this.body = body;
  }

  get retryable() {
    return this.status === 0 || this.status === 429 || this.status === 503;
  }
}

const FALLBACK_MESSAGES = {
  0: "Network error: the service could not be reached. Check your connection and try again.",
  400: "The request was not accepted.",
  401: "Your session has expired. Please sign in again.",
  402: "Not enough credits.",
  403: "This action is not allowed.",
  404: "Not found.",
  409: "This conflicts with another request in progress.",
  410: "This is no longer available.",
  413: "The file is too large for this service.",
  422: "The file could not be read. Is it a valid image or video?",
  429: "Too many requests. Please wait a moment.",
  502: "The model produced no usable answer. Try again.",
  503: "The service is busy or a model is unavailable. Try again shortly.",
};

function messageFor(status, body, requestId) {
  let detail = body && typeof body.detail === "string" ? body.detail : null;
  if (!detail) {
    detail = FALLBACK_MESSAGES[status] || `The server answered with an error (HTTP ${status}).`;
    if (status >= 500 && requestId) detail += ` Request id: ${requestId}.`;
  }
  return detail.charAt(0).toUpperCase() + detail.slice(1);
}

function retryAfterSeconds(value) {
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

/** The JSON body of a finished response, or an ApiError for an error status. */
export function parseResponse(status, contentType, text, headers, options = {}) {
  let body = null;
  if (text && (contentType || "").includes("json")) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (status >= 200 && status < 300) return body;
  if (status === 401 && !options.noRedirect) {
    const next = window.location.pathname + window.location.search;
    window.location.assign(`${base}/ui/login?error=expired&next=${encodeURIComponent(next)}`);
  }
  const message = messageFor(status, body, headers("x-request-id"));
  throw new ApiError(status, message, retryAfterSeconds(headers("retry-after")), body);
}

function absolute(url) {
  return url.startsWith("http") ? url : base + url;
}

function sameOrigin(url) {
  return new URL(url, window.location.href).origin === window.location.origin;
}

/** Headers for ``url``: the CSRF token goes only to this service, never to a blob store. */
function requestHeaders(method, url, extra) {
  const headers = { Accept: "application/json", ...extra };
  if (method !== "GET" && method !== "HEAD" && CONFIG.csrfToken && sameOrigin(url)) {
    headers["X-CSRF-Token"] = CONFIG.csrfToken;
  }
  return headers;
}

/**
 * Call the API: ``json`` or ``form`` (FormData) as the body. Resolves to the parsed
 * JSON body (or {body, headers} with ``withHeaders``); rejects with an ApiError.
 */
export async function api(method, path, options = {}) {
  const url = absolute(path);
  const init = {
    method,
    headers: requestHeaders(method, url, options.headers || {}),
    credentials: "same-origin",
    signal: options.signal,
  };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
  } else if (options.form) {
    init.body = options.form;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, FALLBACK_MESSAGES[0]);
  }
  const text = await response.text();
  const get = (name) => response.headers.get(name);
  const body = parseResponse(response.status, get("content-type"), text, get, options);
  return options.withHeaders ? { body, headers: response.headers } : body;
}

/**
 * Send ``body`` with XMLHttpRequest to report upload progress: ``onProgress(loaded, total)``.
 * Same result and errors as :func:`api`.
 */
export function send(method, url, body, options = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const target = absolute(url);
    xhr.open(method, target);
    for (const [name, value] of Object.entries(requestHeaders(method, target, options.headers || {}))) {
      xhr.setRequestHeader(name, value);
    }
    if (options.onProgress) {
      xhr.upload.onprogress = (event) => options.onProgress(event.loaded, event.total);
    }
    if (options.signal) {
      if (options.signal.aborted) {
        reject(new DOMException("aborted", "AbortError"));
        return;
      }
      options.signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.onerror = () => reject(new ApiError(0, FALLBACK_MESSAGES[0]));
    xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
    xhr.onload = () => {
      try {
        const get = (name) => xhr.getResponseHeader(name);
        resolve(parseResponse(xhr.status, get("content-type"), xhr.responseText, get, options));
      } catch (error) {
        reject(error);
      }
    };
    xhr.send(body);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** ``id`` → element; throws early when a template and its script disagree. */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing element #${id}`);
  return element;
}

/** A DOM element with attributes and children (text is never parsed as HTML). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "className") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function showError(element, error) {
  element.textContent = error instanceof Error ? error.message : String(error);
  element.hidden = false;
}

export function clearError(element) {
  element.textContent = "";
  element.hidden = true;
}

export function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", busy ? "true" : "false");
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatSeconds(seconds) {
  return seconds < 10 ? `${seconds.toFixed(1)} s` : `${Math.round(seconds)} s`;
}

export function formatDate(iso, short = false) {
  if (!iso) return "never";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return short
    ? date.toLocaleString([], { dateStyle: "short", timeStyle: "short" })
    : date.toLocaleString();
}

/** A random id for uploads and Idempotency-Key headers. */
export function randomId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Show the new balance in the top bar (admins analyse for free: no change). */
export function showCredits(balance) {
  const element = document.getElementById("credits");
  if (!element || !CONFIG.user || CONFIG.user.isAdmin || !Number.isFinite(balance)) return;
  CONFIG.user.balance = balance;
  element.textContent = `${balance} credits`;
}

export async function refreshCredits() {
  try {
    const me = await api("GET", "/api/me");
    showCredits(me.balance);
  } catch {
    // the top bar keeps the last known balance
  }
}

function installShell() {
  const signOut = document.getElementById("sign-out");
  if (!signOut) return;
  signOut.addEventListener("click", async () => {
    setBusy(signOut, true);
    try {
      await api("POST", "/logout", { noRedirect: true });
    } catch {
      // the session is gone either way; the login page says so if not
    }
    window.location.assign(`${base}/ui/login`);
  });
}

installShell();
