// Upload a video for a background job: ask for a signed URL (POST
// /video_upload_signed_url/), then PUT the file to it with progress. The signed URL is
// what a job's ``input_url`` takes (the Jobs and Long videos pages share this).
import { api, send } from "./common.js";

/**
 * Upload ``file``; ``onProgress(loaded, total)`` follows the PUT.
 * Resolves to the signed URL; rejects with an ApiError.
 */
export async function uploadToSignedUrl(file, onProgress, signal) {
  const { signed_url: url } = await api("POST", "/video_upload_signed_url/", {
    json: { file_name: file.name },
    signal,
  });
  await send("PUT", url, file, { onProgress, signal });
  return url;
}
