// @ts-check
// @mentions: whether a message names me (`@` then my nickname, not followed by more of a
// word; case-insensitive), and the composer's completion: typing `@` and the start of a name
// lists the room's people whose nickname starts so (arrow keys or a click pick one, Enter or
// Tab puts it in, Escape closes).

/** Most names the completion lists at once. */
const MAX_SUGGESTIONS = 6;

/** @param {string} s */
function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * True when `text` mentions `nickname` (`@Nick`, at the start or after a non-word character,
 * and not followed by a letter, digit or `_`).
 * @param {string | undefined} text
 * @param {string | undefined} nickname
 */
export function mentions(text, nickname) {
  if (!text || !nickname) return false;
  const re = new RegExp(`(^|[^\\p{L}\\p{N}_])@${escapeRegExp(nickname)}(?![\\p{L}\\p{N}_])`, "iu");
  return re.test(text);
}

/**
 * The `@query` being typed right before the caret, if any: where it starts and the query.
 * @param {string} value
 * @param {number} caret
 */
export function mentionAt(value, caret) {
  const m = /(^|\s)@([^\s@]{0,15})$/u.exec(value.slice(0, caret));
  return m ? { start: caret - m[2].length - 1, query: m[2] } : null;
}

/**
 * Names starting with `query` (case-insensitive), without duplicates, at most a handful,
 * alphabetical.
 * @param {string} query
 * @param {string[]} names
 */
export function suggest(query, names) {
  const q = query.toLocaleLowerCase();
  const seen = new Set();
  const out = [];
  for (const n of [...names].sort((a, b) => a.localeCompare(b))) {
    if (seen.has(n) || !n.toLocaleLowerCase().startsWith(q)) continue;
    seen.add(n);
    out.push(n);
    if (out.length === MAX_SUGGESTIONS) break;
  }
  return out;
}

/**
 * Wires the completion to the message box. Call before the composer is wired, so its keys
 * are seen first while the list is open.
 * @param {HTMLTextAreaElement} input
 * @param {HTMLUListElement} list
 * @param {() => string[]} names  nicknames of the room's people (not mine)
 */
export function wireMentions(input, list, names) {
  /** @type {string[]} */
  let shown = [];
  let active = 0;
  const close = () => {
    shown = [];
    list.hidden = true;
    list.replaceChildren();
    input.removeAttribute("aria-activedescendant");
  };
  /** @param {string} name */
  const pick = (name) => {
    const at = mentionAt(input.value, input.selectionStart ?? input.value.length);
    if (!at) return close();
    const caret = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, at.start);
    const after = input.value.slice(caret);
    const put = `@${name} `;
    input.value = before + put + after;
    const pos = before.length + put.length;
    input.setSelectionRange(pos, pos);
    close();
    input.dispatchEvent(new Event("input"));
  };
  const render = () => {
    list.replaceChildren(
      ...shown.map((name, i) => {
        const li = document.createElement("li");
        li.id = `mention-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", String(i === active));
        li.textContent = `@${name}`;
        li.addEventListener("mousedown", (e) => {
          e.preventDefault();
          pick(name);
        });
        return li;
      }),
    );
    list.hidden = shown.length === 0;
    if (shown.length) input.setAttribute("aria-activedescendant", `mention-${active}`);
  };
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.addEventListener("input", () => {
    const at = mentionAt(input.value, input.selectionStart ?? input.value.length);
    if (!at) return close();
    shown = suggest(at.query, names());
    active = 0;
    render();
  });
  input.addEventListener("keydown", (e) => {
    if (!shown.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      active = (active + (e.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if ((e.key === "Enter" || e.key === "Tab") && !e.isComposing) {
      pick(shown[active]);
    } else if (e.key === "Escape") {
      close();
    } else {
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
  });
  input.addEventListener("blur", close);
}
