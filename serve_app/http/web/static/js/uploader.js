// Chunked uploads to POST /api/analyze: progress, retries, resume after a network error.
//
// The upload id is remembered per file (name, size, date) in localStorage, so choosing
// the same file again after a failure or a reload asks the server which chunks it
// already has (GET /api/uploads/{id}) and sends only the missing ones. The last chunk
// goes last: the request that stores it runs the analysis and returns the result.
import { ApiError, api, randomId, send, sleep } from "./common.js";

const MAX_ATTEMPTS = 5;
const STORAGE_PREFIX = "serve_app.upload:";

/** The upload stopped after retries; ``resume()`` continues where it stopped. */
export class UploadPaused extends Error {
  constructor(cause) {
    super(`Upload paused: ${cause.message}`);
    this.name = "UploadPaused";
    this.cause = cause;
  }
}

function storageKey(file) {
  return `${STORAGE_PREFIX}${file.name}:${file.size}:${file.lastModified}`;
}

async function sha256Hex(blob) {
  if (!window.crypto || !crypto.subtle) return null; // only on https or localhost
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class ChunkedUpload {
  /**
   * @param {File} file
   * @param {number} chunkSize bytes per chunk
   * @param {Record<string, string>} fields analysis fields sent with every chunk
   * @param {(sent: number, total: number, phase: string) => void} onProgress
   */
  constructor(file, chunkSize, fields, onProgress) {
    this.file = file;
    this.chunkSize = Math.max(1, chunkSize);
    this.fields = fields;
    this.onProgress = onProgress;
    this.totalChunks = Math.max(1, Math.ceil(file.size / this.chunkSize));
    this.controller = new AbortController();
    const stored = localStorage.getItem(storageKey(file));
    // A new id has nothing on the server yet: skip asking until a retry or a resume.
    this.known = stored !== null;
    this.uploadId = stored || this.newId();
  }

  newId() {
    const id = randomId().replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64);
    localStorage.setItem(storageKey(this.file), id);
    return id;
  }

  cancel() {
    this.controller.abort();
  }

  chunkBytes(number) {
    const start = number * this.chunkSize;
    return Math.min(this.file.size, start + this.chunkSize) - start;
  }

  /** Upload every missing chunk; resolves to the analysis response. */
  async run() {
    const status = this.known ? await this.serverStatus() : null;
    this.known = true;
    if (status && status.state === "done" && status.result) return this.finish(status.result);
    const received = new Set(status ? status.received_chunks : []);
    let sent = 0;
    for (const number of received) sent += this.chunkBytes(number);
    const last = this.totalChunks - 1;
    const missing = [];
    for (let n = 0; n < this.totalChunks; n += 1) if (!received.has(n) && n !== last) missing.push(n);
    // The last chunk runs the analysis: it goes last, and is sent again when the server
    // already has it (all chunks in, but an earlier analysis failed: this retries it).
    missing.push(last);
    for (const number of missing) {
      const alreadyCounted = received.has(number);
      const result = await this.sendChunk(number, (loaded) => {
        const phase = number === last && loaded >= this.chunkBytes(number) ? "analysing" : "uploading";
        this.onProgress(Math.min(this.file.size, sent + (alreadyCounted ? 0 : loaded)), this.file.size, phase);
      });
      if (!alreadyCounted) sent += this.chunkBytes(number);
      if (number === last) return this.finish(result);
    }
    throw new Error("upload ended without a result");
  }

  finish(result) {
    localStorage.removeItem(storageKey(this.file));
    return result;
  }

  /** The server's view of this upload, or null when it has none (or it expired). */
  async serverStatus() {
    try {
      return await api("GET", `/api/uploads/${encodeURIComponent(this.uploadId)}`, {
        signal: this.controller.signal,
      });
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 410)) {
        if (error.status === 410) this.uploadId = this.newId();
        return null;
      }
      if (error instanceof ApiError && error.retryable) throw new UploadPaused(error);
      throw error;
    }
  }

  async sendChunk(number, onLoaded) {
    const start = number * this.chunkSize;
    const blob = this.file.slice(start, start + this.chunkSize);
    const checksum = await sha256Hex(blob);
    let lastError = null;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const form = new FormData();
      for (const [name, value] of Object.entries(this.fields)) {
        if (value !== "" && value !== null && value !== undefined) form.append(name, value);
      }
      form.append("upload_id", this.uploadId);
      form.append("chunk_number", String(number));
      form.append("total_chunks", String(this.totalChunks));
      form.append("filename", this.file.name);
      if (checksum) form.append("chunk_sha256", checksum);
      form.append("file", blob, this.file.name);
      try {
        return await send("POST", "/api/analyze", form, {
          signal: this.controller.signal,
          onProgress: (loaded, total) => onLoaded(Math.round((loaded / total) * blob.size)),
        });
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status === 409 && number === this.totalChunks - 1) {
          return this.waitForAnalysis();
        }
        if (!error.retryable) throw error;
        lastError = error;
        if (attempt < MAX_ATTEMPTS) {
          const backoff = error.retryAfter ?? Math.min(8, 2 ** (attempt - 1));
          this.onProgress(null, this.file.size, `retrying in ${backoff} s (attempt ${attempt + 1} of ${MAX_ATTEMPTS})`);
          await sleep(backoff * 1000);
        }
      }
    }
    throw new UploadPaused(lastError);
  }

  /** Another request is analysing the complete upload: poll until its result is in. */
  async waitForAnalysis() {
    for (;;) {
      await sleep(1000);
      const status = await this.serverStatus();
      if (status === null) throw new ApiError(410, "The upload was discarded. Start again.");
      if (status.state === "done" && status.result) return status.result;
      if (status.state === "receiving") return this.run();
    }
  }
}
