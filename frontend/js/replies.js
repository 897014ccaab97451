// @ts-check
// Replies: a Reply button on each message (in its reactions row) puts "Replying to …" above the message box (the
// next message sent answers it: `reply_to`), and a reply shows the server's quote of what it
// answers (author and the start of the text); a click on the quote brings the original into
// view, loading older pages first when it is not shown yet.

import { button } from "./dom.js";
import { setLabel, setText, t } from "./i18n.js";

/**
 * @typedef {{ seq: number, user: { id: number, nickname: string }, snippet: string, deleted?: boolean }} ReplyRef
 */

/** The message the next send answers, shown above the message box. */
export class ReplyDraft {
  /**
   * @param {HTMLElement} bar
   * @param {HTMLTextAreaElement} input
   */
  constructor(bar, input) {
    this.bar = bar;
    this.input = input;
    /** @type {number | null} */
    this.seq = null;
    bar.querySelector("#reply-cancel")?.addEventListener("click", () => {
      this.clear();
      input.focus();
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.seq !== null && !e.defaultPrevented) this.clear();
    });
  }

  /** Answer the message at `seq` by `nickname` (its text starting with `snippet`). @param {number} seq @param {string} nickname @param {string} snippet */
  set(seq, nickname, snippet) {
    this.seq = seq;
    const target = /** @type {HTMLElement} */ (this.bar.querySelector(".reply-target"));
    setText(target, "reply.replyingTo", { name: nickname, snippet: snippet || t("reply.noText") });
    this.bar.hidden = false;
    this.input.focus();
  }

  clear() {
    this.seq = null;
    this.bar.hidden = true;
  }

  /** The seq to send with, once (the draft is cleared). */
  take() {
    const seq = this.seq;
    this.clear();
    return seq;
  }
}

/**
 * Adds the quote of what `m` answers (if it is a reply) and a Reply button to the shown
 * message `li`.
 * @param {HTMLElement} li
 * @param {{ seq: number, user?: { nickname: string }, text?: string, deleted?: boolean, reply_to?: ReplyRef }} m
 * @param {{ onReply: (seq: number, nickname: string, snippet: string) => void, onJump: (seq: number) => void, isRemoved: (seq: number) => boolean }} o
 */
export function decorateReply(li, m, { onReply, onJump, isRemoved }) {
  const bubble = li.querySelector(".bubble");
  if (!bubble || m.deleted || li.classList.contains("removed")) return;
  if (m.reply_to && !bubble.querySelector(".reply-quote")) {
    const r = m.reply_to;
    const quote = button("reply-quote", () => onJump(r.seq));
    quote.dataset.replyTo = String(r.seq);
    const who = document.createElement("span");
    who.className = "reply-author";
    who.textContent = r.user?.nickname ?? "?";
    const what = document.createElement("span");
    what.className = "reply-snippet";
    showSnippet(what, r, isRemoved(r.seq));
    quote.append(who, what);
    setLabel(quote, "reply.jumpLabel", { name: r.user?.nickname ?? "?" });
    bubble.querySelector(".meta")?.after(quote);
  }
  // In the message's tool row (made by the reactions), so grouped messages have it too.
  const row = bubble.querySelector(":scope > .reactions");
  if (row && !row.querySelector(".reply-button")) {
    const snippet = (m.text ?? "").replace(/\s+/g, " ").trim().slice(0, 120);
    const b = button("reaction msg-tool reply-button", () => onReply(m.seq, m.user?.nickname ?? "?", snippet));
    setText(b, "reply.reply");
    setLabel(b, "reply.replyLabel", { name: m.user?.nickname ?? "?" });
    row.append(b);
  }
}

/** The original at `seq` was deleted: quotes of it say so. @param {ParentNode} root @param {number} seq */
export function markQuotesRemoved(root, seq) {
  for (const q of root.querySelectorAll(`.reply-quote[data-reply-to="${seq}"] .reply-snippet`)) {
    showSnippet(/** @type {HTMLElement} */ (q), null, true);
  }
}

/** @param {HTMLElement} el @param {ReplyRef | null} r @param {boolean} removed */
function showSnippet(el, r, removed) {
  if (removed || r?.deleted) setText(el, "reply.removed");
  else if (r && !r.snippet) setText(el, "reply.noText");
  else el.textContent = r?.snippet ?? "";
}
