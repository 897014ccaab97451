// @ts-check
// Reactions on messages: under each message, a row with one chip per emoji someone used (the emoji, how
// many, pressed when I am one of them, who in its tooltip), and a button that opens the fixed
// set to add one. A click toggles my reaction; the server's `reactions` frames (and the
// messages' own `reactions`) are the truth, the newest `version` of each message winning.

import { button } from "./dom.js";
import { formatNumber, setLabel, t } from "./i18n.js";
import { REACTION_EMOJI } from "./limits.js";

/**
 * @typedef {{ emoji: string, users: number[] }} Reaction
 * @typedef {{ seq: number, version: number, reactions: Reaction[] }} MessageReactions
 */

export class Reactions {
  /**
   * @param {object} o
   * @param {(seq: number) => HTMLElement | undefined} o.itemOf  the message's element, if shown
   * @param {() => { id: number } | null} o.me
   * @param {(id: number) => string} o.nameOf
   * @param {(seq: number, emoji: string, on: boolean) => void} o.onToggle
   */
  constructor({ itemOf, me, nameOf, onToggle }) {
    this.itemOf = itemOf;
    this.me = me;
    this.nameOf = nameOf;
    this.onToggle = onToggle;
    /** @type {Map<number, MessageReactions>} */
    this.states = new Map();
  }

  /** A message as history, `joined` or a live `message` gives it. @param {{ seq: number, reactions?: Reaction[], reactions_version?: number, deleted?: boolean }} m */
  fromMessage(m) {
    if (m.deleted) return;
    this.#keep({ seq: m.seq, version: m.reactions_version ?? 0, reactions: m.reactions ?? [] });
  }

  /** A `reactions` frame's states. @param {MessageReactions[]} states */
  update(states) {
    for (const s of states) if (this.#keep(s)) this.render(s.seq);
  }

  /** Draws the reactions row of `seq` (when the message is shown and not removed). @param {number} seq */
  render(seq) {
    const li = this.itemOf(seq);
    if (!li || li.classList.contains("removed") || li.classList.contains("pending")) return;
    const bubble = li.querySelector(".bubble");
    if (!bubble) return;
    let row = /** @type {HTMLElement | null} */ (bubble.querySelector(":scope > .reactions"));
    if (!row) {
      row = document.createElement("div");
      row.className = "reactions";
      const meta = bubble.querySelector(".mod-actions, .seen-by");
      bubble.insertBefore(row, meta);
    }
    // Other tools of the message that live in this row (the Reply button) stay.
    const tools = [...row.querySelectorAll(":scope > .msg-tool")];
    row.replaceChildren();
    const me = this.me()?.id;
    const reactions = this.states.get(seq)?.reactions ?? [];
    row.classList.toggle("empty", reactions.length === 0);
    for (const r of reactions) {
      const mine = me !== undefined && r.users.includes(me);
      const chip = button("reaction", () => this.onToggle(seq, r.emoji, !mine));
      chip.setAttribute("aria-pressed", String(mine));
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = formatNumber(r.users.length);
      chip.append(r.emoji, " ", count);
      // Me first, then the others in the order they are listed.
      const others = r.users.filter((id) => id !== me).map((id) => this.nameOf(id));
      const names = (mine ? [t("react.you"), ...others] : others).join(", ");
      chip.title = names;
      setLabel(chip, "react.chipLabel", { emoji: r.emoji, names });
      row.append(chip);
    }
    row.append(this.#picker(seq), ...tools);
  }

  /** Redraws every shown row (after a language switch). */
  relabel() {
    for (const seq of this.states.keys()) this.render(seq);
  }

  /** The "add a reaction" button and the set it opens. @param {number} seq */
  #picker(seq) {
    const box = document.createElement("span");
    box.className = "reaction-add";
    const choices = document.createElement("span");
    choices.className = "reaction-choices";
    choices.hidden = true;
    const open = button("reaction reaction-open", () => {
      choices.hidden = !choices.hidden;
      open.setAttribute("aria-expanded", String(!choices.hidden));
    });
    open.textContent = "☺+";
    open.setAttribute("aria-expanded", "false");
    setLabel(open, "react.add");
    const me = this.me()?.id;
    for (const emoji of REACTION_EMOJI) {
      const held = me !== undefined && Boolean(this.states.get(seq)?.reactions.find((r) => r.emoji === emoji)?.users.includes(me));
      const b = button("reaction-choice", () => {
        choices.hidden = true;
        this.onToggle(seq, emoji, !held);
      });
      b.textContent = emoji;
      setLabel(b, "react.with", { emoji });
      choices.append(b);
    }
    box.append(open, choices);
    return box;
  }

  /** Keeps `s` when newer than what is known; true when kept. @param {MessageReactions} s */
  #keep(s) {
    const known = this.states.get(s.seq);
    if (known && known.version >= s.version) return false;
    this.states.set(s.seq, s);
    return true;
  }
}

