// @ts-check
// Images in messages: what may be uploaded (checked here for a quick answer; the server checks
// the bytes again), and the three steps of an upload that work the same on every deployment:
// ask the server for an upload slot, PUT the bytes where it says (chat-server itself, or a
// presigned S3 URL on AWS), then have the server verify them, which returns the attachment a
// `send` frame carries.

import { ApiError, request, messageOf, timedOut } from "./api.js";
import { IMAGE_TYPES, IMAGE_MAX_BYTES } from "./limits.js";
import { t } from "./i18n.js";

export { IMAGE_TYPES, IMAGE_MAX_BYTES };

/**
 * `{ ok: true }` or `{ ok: false, message }` for a File (or anything with name, type, size).
 * @param {{ name?: string, type: string, size: number } | null | undefined} file
 * @returns {{ ok: true } | { ok: false, message: string }}
 */
export function checkImageFile(file) {
  if (!file) return { ok: false, message: t("image.none") };
  const name = file.name || t("image.thisFile");
  if (!IMAGE_TYPES.includes(file.type)) {
    return { ok: false, message: t("image.type", { name, type: file.type || t("image.unknownType") }) };
  }
  if (file.size > IMAGE_MAX_BYTES) {
    return { ok: false, message: t("image.tooBig", { name, size: (file.size / 1024 / 1024).toFixed(1) }) };
  }
  if (file.size === 0) return { ok: false, message: t("image.empty", { name }) };
  return { ok: true };
}

/**
 * The display box for an image of `width` × `height` that fits in `maxW` × `maxH` without
 * growing it: the size the page reserves before the image has loaded (no layout jump).
 * @param {number} width @param {number} height @param {number} maxW @param {number} maxH
 */
export function fitBox(width, height, maxW, maxH) {
  if (!(width > 0 && height > 0)) return { width: maxW, height: Math.round(maxW * 0.75) };
  const scale = Math.min(1, maxW / width, maxH / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Uploads `file` and returns the attachment to send: `{ url, content_type, width, height, bytes, token }`.
 * @param {string} apiBase @param {string} token @param {File} file
 * @returns {Promise<import("./connection.js").Attachment>}
 */
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
    throw new ApiError(0, "network", t("net.uploadFailed", { error: timedOut(err) ? t("net.timedOut") : messageOf(err) }));
  }
  if (!put.ok) {
    let message = t("net.uploadRefused", { status: String(put.status) });
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
