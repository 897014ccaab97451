// "Seen by N" under my own latest message: everyone else whose read position (from the
// server's `receipts` frames) has reached it, with their names on hover (title) or tap (the
// <details> opens). Positions only rise, as on the server.

export class SeenBy {
  /**
   * @param {object} o
   * @param {HTMLElement} o.list    the message list (`#messages`)
   * @param {Function} o.me         () => the current user
   * @param {Function} o.nameOf     (userId) => a nickname
   */
  constructor({ list, me, nameOf }) {
    Object.assign(this, { list, me, nameOf });
    /** user id → highest seq seen. */
    this.positions = new Map();
    this.el = document.createElement("details");
    this.el.className = "seen-by";
    this.summary = document.createElement("summary");
    this.names = document.createElement("p");
    this.el.append(this.summary, this.names);
  }

  /** A `receipts` frame's `seen` pairs. */
  update(seen) {
    for (const [id, seq] of seen || []) {
      if (typeof id === "number" && typeof seq === "number" && seq > (this.positions.get(id) ?? 0)) this.positions.set(id, seq);
    }
    this.render();
  }

  /** Puts the line under my latest stored message (call when messages change too). */
  render() {
    const mine = [...this.list.querySelectorAll(".msg.mine:not(.removed)")].pop();
    const seq = Number(mine?.dataset.seq);
    const meId = this.me()?.id;
    const who = mine
      ? [...this.positions].filter(([id, s]) => id !== meId && s >= seq).map(([id]) => this.nameOf(id))
      : [];
    if (!who.length) {
      this.el.remove();
      return;
    }
    who.sort((a, b) => a.localeCompare(b));
    this.summary.textContent = `Seen by ${who.length}`;
    this.summary.title = who.join(", ");
    this.names.textContent = who.join(", ");
    const bubble = mine.querySelector(".bubble");
    if (this.el.parentElement !== bubble) bubble.append(this.el);
  }
}
