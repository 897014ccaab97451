// @ts-check
// Sharing a room: a dialog with the room's QR code, its address and a copy button, and a link
// to the projector view for the screen on stage.

import { byId } from "./dom.js";
import { setText, t, onLanguageChange } from "./i18n.js";
import { qrSvg } from "./qr.js";

/**
 * Wires the header's Share button to the dialog.
 * @param {string} url  the room's address (endpoints.roomUrl)
 */
export function wireShare(url) {
  const dialog = byId("share-dialog", HTMLDialogElement);
  const link = byId("share-link", HTMLInputElement);
  const status = byId("share-status");
  const projector = byId("share-projector", HTMLAnchorElement);
  link.value = url;
  const view = new URL(url);
  view.searchParams.set("view", "projector");
  projector.href = view.href;
  const drawQr = () => byId("share-qr").replaceChildren(qrSvg(url, t("share.qrLabel", { url })));
  drawQr();
  onLanguageChange(drawQr);
  byId("share-button").addEventListener("click", () => {
    status.textContent = "";
    dialog.showModal();
    byId("share-copy").focus();
  });
  byId("share-close").addEventListener("click", () => dialog.close());
  byId("share-copy").addEventListener("click", async () => {
    setText(status, (await copyText(link)) ? "share.copied" : "share.copyFailed");
  });
}

/**
 * Copies the input's text to the clipboard: the async Clipboard API where the page may use it
 * (secure contexts), else the selection and execCommand. True when it worked.
 * @param {HTMLInputElement} input
 */
async function copyText(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}
