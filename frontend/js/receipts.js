// @ts-check
// "Seen by N" under my own latest message: everyone else whose read position (from the
// server's `receipts` frames) has reached it, with their names on hover (title) or tap (the
// <details> opens). Positions only rise, as on the server.

import { setText } from "./i18n.js";

export class SeenBy {
  /**
   * @param {object} o
   * @param {HTMLElement} o.list    the message list (`#messages`)
   * @param {() => import("./session.js").User | null} o.me  the current user
   * @param {(userId: number) => string} o.nameOf  a nickname
   */
  constructor({ list, me, nameOf }) {
    this.list = list;
    this.me = me;
    this.nameOf = nameOf;
    /** @type {Map<number, number>} user id → highest seq seen. */
    this.positions = new Map();
    this.el = document.createElement("details");
    this.el.className = "seen-by";
    this.summary = document.createElement("summary");
    this.names = document.createElement("p");
    this.el.append(this.summary, this.names);
  }

  /** A `receipts` frame's `seen` pairs. @param {[number, number][] | undefined} seen */
  update(seen) {
    for (const [id, seq] of seen || []) {
      if (typeof id === "number" && typeof seq === "number" && seq > (this.positions.get(id) ?? 0)) this.positions.set(id, seq);
    }
    this.render();
  }

  /** Puts the line under my latest stored message (call when messages change too). */
  render() {
    const mine = /** @type {HTMLElement | undefined} */ ([...this.list.querySelectorAll(".msg.mine:not(.removed)")].pop());
    const seq = Number(mine?.dataset.seq);
    const meId = this.me()?.id;
    const who = mine
      ? [...this.positions].filter(([id, s]) => id !== meId && s >= seq).map(([id]) => this.nameOf(id))
      : [];
    if (!mine || !who.length) {
      this.el.remove();
      return;
    }
    who.sort((a, b) => a.localeCompare(b));
    setText(this.summary, "room.seenBy", { count: who.length });
    this.summary.title = who.join(", ");
    this.names.textContent = who.join(", ");
    const bubble = mine.querySelector(".bubble");
    if (bubble && this.el.parentElement !== bubble) bubble.append(this.el);
  }
}
