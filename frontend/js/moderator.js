// @ts-check
// A moderator credential from the link (`#moderator=…`, see docs/web-client.md "Moderation"),
// kept for this tab only and taken out of the address bar, so a link copied from it never
// carries it.

const MODERATOR_KEY = "chat.moderator";

/** The credential from the link or from earlier in this tab, or null. */
export function moderatorCredential() {
  const m = /(?:^#|&)moderator=([^&]+)/.exec(location.hash);
  if (m) {
    const value = decodeURIComponent(m[1]);
    try {
      sessionStorage.setItem(MODERATOR_KEY, value);
    } catch {
      // Storage off: the credential lasts as long as the page.
    }
    history.replaceState(history.state, "", location.pathname + location.search);
    return value;
  }
  try {
    return sessionStorage.getItem(MODERATOR_KEY);
  } catch {
    return null;
  }
}

/** The server refused the credential: forget it. */
export function forgetModeratorCredential() {
  try {
    sessionStorage.removeItem(MODERATOR_KEY);
  } catch {
    // Nothing kept.
  }
}
