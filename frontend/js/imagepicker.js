// @ts-check
// Images in the room: picked with the button, pasted, or dropped on the room; each is checked
// (type, size), uploaded (uploads.js) and sent as a message, one at a time.

import { byId } from "./dom.js";
import { serverMessage, t } from "./i18n.js";
import { checkImageFile, uploadImage } from "./uploads.js";
import { ApiError, messageOf } from "./api.js";
import { showComposerError, showLine } from "./views.js";

/**
 * @param {import("./connection.js").ChatConnection} conn
 * @param {string} apiBase
 * @param {() => string} token  the current guest token
 */
export function wireImages(conn, apiBase, token) {
  const input = byId("image-input", HTMLInputElement);
  let busy = false;
  /** @param {File} file */
  const share = async (file) => {
    const check = checkImageFile(file);
    if (!check.ok) {
      showComposerError(check.message);
      return;
    }
    if (busy) {
      showComposerError({ key: "image.oneAtATime" });
      return;
    }
    busy = true;
    showComposerError(null);
    showLine("upload-status", { key: "image.uploading", params: { name: file.name || t("image.default") } });
    try {
      const attachment = await uploadImage(apiBase, token(), file);
      conn.send("", attachment);
    } catch (err) {
      const error = err instanceof ApiError ? serverMessage(err.code, err.message) : messageOf(err);
      showComposerError({ key: "image.shareFailed", params: { name: file.name || t("image.default"), error } });
    } finally {
      busy = false;
      showLine("upload-status", null);
    }
  };
  byId("attach-button").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const file = input.files?.[0];
    input.value = "";
    if (file) share(file);
  });
  byId("composer-input").addEventListener("paste", (event) => {
    const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      share(file);
    }
  });
  const room = byId("room");
  room.addEventListener("dragover", (event) => {
    if ([...(event.dataTransfer?.types || [])].includes("Files")) {
      event.preventDefault();
      room.dataset.dropping = "true";
    }
  });
  room.addEventListener("dragleave", (event) => {
    if (event.target === room || !room.contains(/** @type {Node | null} */ (event.relatedTarget))) delete room.dataset.dropping;
  });
  room.addEventListener("drop", (event) => {
    const file = event.dataTransfer?.files?.[0];
    delete room.dataset.dropping;
    if (!file) return;
    event.preventDefault();
    share(file);
  });
}
