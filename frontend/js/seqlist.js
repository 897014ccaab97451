// @ts-check
// The ordered set of message seqs a page shows: dedupes catch-ups and pages by seq and says
// where each new message goes, whatever order the pieces arrive in.

export class SeqList {
  /** @type {number[]} */
  #seqs = [];

  get size() {
    return this.#seqs.length;
  }
  get first() {
    return this.#seqs[0];
  }
  get last() {
    return this.#seqs[this.#seqs.length - 1];
  }
  /** @param {number} seq */
  has(seq) {
    return this.#find(seq).found;
  }

  /**
   * Records `seq`. Returns the index it now has, or -1 when it was already there.
   * The element to insert before is the one that had this index (none when it is the last).
   * @param {number} seq
   */
  insert(seq) {
    const { found, index } = this.#find(seq);
    if (found) return -1;
    this.#seqs.splice(index, 0, seq);
    return index;
  }

  /** The seq at `index`, e.g. the one a new element must be inserted before. @param {number} index */
  at(index) {
    return this.#seqs[index];
  }

  /** @param {number} seq */
  #find(seq) {
    let lo = 0;
    let hi = this.#seqs.length;
    // Live messages arrive in order: check the end first.
    if (hi === 0 || this.#seqs[hi - 1] < seq) return { found: false, index: hi };
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#seqs[mid] < seq) lo = mid + 1;
      else hi = mid;
    }
    return { found: this.#seqs[lo] === seq, index: lo };
  }
}
