// Images in messages: what may be uploaded (checked here for a quick answer; the server checks
// the bytes again), and the three steps of an upload that work the same on every deployment:
// ask the server for an upload slot, PUT the bytes where it says (chat-server itself, or a
// presigned S3 URL on AWS), then have the server verify them, which returns the attachment a
// `send` frame carries.

import { ApiError, request } from "./api.js";

/** The contract's image limits (docs/PROTOCOL.md). */
export const IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
export const IMAGE_MAX_BYTES = 5 * 1024 * 1024;

/** `{ ok: true }` or `{ ok: false, message }` for a File (or anything with name, type, size). */
export function checkImageFile(file) {
  if (!file) return { ok: false, message: "No file was chosen." };
  if (!IMAGE_TYPES.includes(file.type)) {
    return { ok: false, message: `Only JPEG, PNG, GIF and WebP images can be shared (${file.name || "this file"} is ${file.type || "of an unknown type"}).` };
  }
  if (file.size > IMAGE_MAX_BYTES) {
    return { ok: false, message: `An image is at most 5 MB (${file.name || "this one"} is ${(file.size / 1024 / 1024).toFixed(1)} MB).` };
  }
  if (file.size === 0) return { ok: false, message: `${file.name || "This file"} is empty.` };
  return { ok: true };
}

/**
 * The display box for an image of `width` × `height` that fits in `maxW` × `maxH` without
 * growing it: the size the page reserves before the image has loaded (no layout jump).
 */
export function fitBox(width, height, maxW, maxH) {
  if (!(width > 0 && height > 0)) return { width: maxW, height: Math.round(maxW * 0.75) };
  const scale = Math.min(1, maxW / width, maxH / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** Uploads `file` and returns the attachment to send: `{ url, content_type, width, height, bytes, token }`. */
export async function uploadImage(apiBase, token, file) {
  const auth = { authorization: `Bearer ${token}` };
  const slot = await request(apiBase, "/api/uploads", {
    method: "POST",
    body: { content_type: file.type, bytes: file.size },
    headers: auth,
  });
  const target = new URL(slot.upload.url, `${apiBase}/`);
  const sameServer = target.origin === new URL(`${apiBase}/`).origin;
  let put;
  try {
    put = await fetch(target, {
      method: slot.upload.method || "PUT",
      headers: { ...(slot.upload.headers || {}), ...(sameServer ? auth : {}) },
      body: file,
      signal: AbortSignal.timeout(120000),
    });
  } catch (err) {
    throw new ApiError(0, "network", `The upload did not go through (${err.name === "TimeoutError" ? "timed out" : err.message}).`);
  }
  if (!put.ok) {
    let message = `The upload was refused (HTTP ${put.status}).`;
    try {
      message = (await put.json()).error?.message || message;
    } catch {
      // S3 answers XML: the status says enough.
    }
    throw new ApiError(put.status, "upload_failed", message);
  }
  const done = await request(apiBase, `/api/uploads/${encodeURIComponent(slot.id)}/complete`, { method: "POST", body: {}, headers: auth });
  return done.attachment;
}
