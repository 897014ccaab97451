// @ts-check
// The message box: grows with its text, Enter sends (Shift+Enter is a new line, an IME's
// Enter composes), the length rule is checked before sending, and typing frames go out at
// most every few seconds while the person types.

import { byId } from "./dom.js";
import { checkText } from "./validate.js";
import { showComposerError } from "./views.js";

/** Typing frames are sent at most this often while the person types. */
const TYPING_EVERY_MS = 3000;

/**
 * @param {import("./connection.js").ChatConnection} conn
 * @param {{ take(): number | null }} [reply]  the message the next send answers, if any
 */
export function wireComposer(conn, reply) {
  const form = byId("composer", HTMLFormElement);
  const input = byId("composer-input", HTMLTextAreaElement);
  let lastTyping = 0;
  const grow = () => {
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight}px`;
  };
  input.addEventListener("input", () => {
    grow();
    showComposerError(null);
    if (input.value.trim() && Date.now() - lastTyping > TYPING_EVERY_MS) {
      lastTyping = Date.now();
      conn.typing();
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const check = checkText(input.value);
    if (!check.ok) {
      showComposerError(check.message);
      return;
    }
    conn.send(check.value, null, reply?.take() ?? null);
    lastTyping = 0;
    input.value = "";
    grow();
    input.focus();
  });
}
