// The web client's entry point: reads the URL (landing page or /room/{room}, ?title=, ?theme=),
// settles the guest identity, and wires the room's connection to the page.

import { endpoints, parseRoute, newRoomId, ROOM_RE } from "./js/endpoints.js";
import { postSession, getHistory, ApiError } from "./js/api.js";
import { loadSession, saveSession } from "./js/session.js";
import { applyTheme, followParentTheme } from "./js/theme.js";
import { ChatConnection } from "./js/connection.js";
import { Timeline } from "./js/timeline.js";
import { SeenBy } from "./js/receipts.js";
import { Presence } from "./js/presence.js";
import { paintAvatar } from "./js/avatar.js";
import { backoffDelay } from "./js/backoff.js";
import { checkNickname, checkText } from "./js/validate.js";
import { Attention } from "./js/attention.js";
import { checkImageFile, uploadImage } from "./js/uploads.js";

const $ = (id) => document.getElementById(id);
/** What `join` without `after` returns: a full page means older ones may exist. */
const FIRST_PAGE = 50;
/** Typing frames are sent at most this often while the person types. */
const TYPING_EVERY_MS = 3000;
/** A failed token refresh is tried again after this long. */
const REFRESH_RETRY_MS = 30000;


// ---------------------------------------------------------------- landing

function showLanding({ error, theme }) {
  $("landing").hidden = false;
  document.title = "Chat";
  const input = $("room-input");
  const errorEl = $("room-error");
  const carry = theme ? `?theme=${encodeURIComponent(theme)}` : "";
  const showError = (msg) => {
    errorEl.textContent = msg;
    errorEl.hidden = !msg;
    input.setAttribute("aria-invalid", msg ? "true" : "false");
  };
  if (error) showError(error);
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const room = input.value.trim();
    if (!ROOM_RE.test(room)) {
      showError("Use 1–64 letters, digits, - or _ for the room name.");
      input.focus();
      return;
    }
    location.assign(`/room/${room}${carry}`);
  });
  $("create-room").addEventListener("click", () => location.assign(`/room/${newRoomId()}${carry}`));
  input.focus();
}

// ---------------------------------------------------------------- room

async function openRoom({ room, title }) {
  const { apiBase, wsUrl } = endpoints(location, window.CHAT_CONFIG || {});
  $("room").hidden = false;
  $("room-title").textContent = title;
  document.title = `${title} · Chat`;
  const participants = $("participants");
  if (window.matchMedia("(min-width: 52rem)").matches && window.parent === window) showParticipants(true);
  $("online-toggle").addEventListener("click", () => showParticipants(participants.hidden));

  let session = loadSession();
  if (!session) {
    const fresh = await retrying(() => postSession(apiBase, {}), "Creating your guest identity");
    session = { ...sessionFrom(fresh), confirmed: false };
    saveSession(session);
  }
  if (session.expiresAt !== undefined && session.expiresAt <= Date.now()) {
    // Away longer than a token lives: a new guest under the same name.
    const fresh = await retrying(() => postSession(apiBase, { nickname: session.user.nickname }), "Renewing your session");
    session = { ...sessionFrom(fresh), confirmed: session.confirmed };
    saveSession(session);
  }
  showMe(session.user);
  if (!session.confirmed) session = await askNickname(apiBase, session, true);

  const conn = new ChatConnection({ url: wsUrl, token: session.token, room, moderator: moderatorCredential() });
  /** user id → nickname of those this moderator muted (the `muted` frame names only the id). */
  const mutedNames = new Map();
  // Tokens expire: renew silently at half their life (now, for one saved without an expiry),
  // so the next hello always carries a valid token and the guest keeps its id.
  const refresh = async () => {
    try {
      const fresh = await postSession(apiBase, { token: session.token, nickname: session.user.nickname });
      session = { ...session, ...sessionFrom(fresh) };
      saveSession(session);
      conn.token = fresh.token;
      setTimeout(refresh, refreshDelay(session));
    } catch {
      setTimeout(refresh, REFRESH_RETRY_MS);
    }
  };
  setTimeout(refresh, refreshDelay(session));
  const me = () => conn.user ?? session.user;
  const timeline = new Timeline({
    scroller: $("scroller"),
    list: $("messages"),
    pendingList: $("pending"),
    pill: $("new-pill"),
    loadOlderButton: $("load-older"),
    historyStart: $("history-start"),
    me,
    fetchOlder: (before) => getHistory(apiBase, room, { before, limit: FIRST_PAGE }),
    onRetry: (id) => conn.retry(id),
    onDiscard: (id) => conn.discard(id),
    onError: showComposerError,
    moderation: {
      active: () => Boolean(conn.moderatorName),
      onDelete: (seq) => conn.deleteMessage(seq) || showComposerError("Not connected: try again in a moment."),
      onMute: (user, secs) => {
        mutedNames.set(user.id, user.nickname);
        if (!conn.mute(user.id, secs)) showComposerError("Not connected: try again in a moment.");
      },
    },
  });
  /** user id → nickname, from messages and presence (for "Seen by"). */
  const names = new Map();
  const learn = (users) => {
    for (const u of users) if (u?.id !== undefined) names.set(u.id, u.nickname);
  };
  const seenBy = new SeenBy({ list: $("messages"), me, nameOf: (id) => names.get(id) ?? `Guest ${id}` });
  // The newest message is on screen while the page is visible: tell the server (throttled).
  const markRead = () => {
    if (document.visibilityState === "visible" && timeline.atBottom() && conn.lastSeq > 0) conn.read(conn.lastSeq);
  };
  $("scroller").addEventListener("scroll", markRead, { passive: true });
  document.addEventListener("visibilitychange", markRead);
  const presence = new Presence({ countEl: $("online-count"), listEl: $("member-list"), typingEl: $("typing"), me });
  const attention = new Attention({ title: `${title} · Chat`, roomTitle: title, room, bell: $("notify-toggle"), me, onError: showComposerError });

  let firstJoin = true;
  let unauthorizedAt = 0;
  conn.addEventListener("state", (e) => setStatus(e.detail.state));
  conn.addEventListener("welcome", (e) => {
    const { user, server } = e.detail;
    session = { ...session, user };
    saveSession(session);
    showMe(user);
    showServer(server);
    showModerator(conn);
    timeline.refreshModeration();
  });
  conn.addEventListener("deleted", (e) => {
    timeline.removeMessage(e.detail.message);
    seenBy.render();
  });
  conn.addEventListener("receipts", (e) => seenBy.update(e.detail.seen));
  conn.addEventListener("muted", (e) => {
    const { user_id: userId, until } = e.detail;
    const ends = timeFmt.format(new Date(until));
    if (userId === me().id) {
      showComposerError(until > Date.now() ? `A moderator muted you in this room until ${ends}.` : "A moderator lifted your mute: you can send again.");
    } else {
      const who = mutedNames.get(userId) ?? `user ${userId}`;
      showModStatus(until > Date.now() ? `Muted ${who} until ${ends}.` : `Lifted the mute of ${who}.`);
    }
  });
  conn.addEventListener("joined", async (e) => {
    const f = e.detail;
    presence.reset(f.online, f.members);
    const messages = f.messages || [];
    learn(f.members || []);
    learn(messages.map((m) => m.user));
    if (firstJoin) {
      firstJoin = false;
      timeline.showInitial(messages, messages.length >= FIRST_PAGE && messages[0].seq > 1);
    } else {
      attention.saw(timeline.addLive(messages));
    }
    // More than one catch-up's worth was missed: page the rest over HTTP. Each page starts
    // after the highest seq the catch-up itself has read (the joined frame, then each page),
    // never after conn.lastSeq: live frames move that forward meanwhile, and paging from it
    // would skip every message between this page and the newest live one.
    let more = Boolean(f.has_more);
    let cursor = messages.reduce((hi, m) => Math.max(hi, m.seq), 0);
    while (more) {
      try {
        const page = await getHistory(apiBase, room, { after: cursor, limit: 200 });
        for (const m of page.messages) {
          conn.saw(m.seq);
          cursor = Math.max(cursor, m.seq);
        }
        attention.saw(timeline.addLive(page.messages));
        more = page.has_more && page.messages.length > 0;
      } catch (err) {
        showComposerError(`Could not catch up on missed messages: ${err.message}`);
        more = false;
      }
    }
    seenBy.render();
    markRead();
  });
  conn.addEventListener("message", (e) => {
    learn([e.detail.user]);
    attention.saw(timeline.addLive([e.detail]));
    seenBy.render();
    markRead();
    presence.stoppedTyping(e.detail.user);
    presence.rename(e.detail.user);
  });
  conn.addEventListener("presence", (e) => {
    learn([e.detail.joined]);
    presence.update(e.detail);
  });
  conn.addEventListener("typing", (e) => presence.typing(e.detail.user));
  conn.addEventListener("outbox", (e) => timeline.showPending(e.detail));
  conn.addEventListener("server-error", (e) => showComposerError(e.detail.message || e.detail.code));
  conn.addEventListener("unauthorized", async () => {
    // The token no longer verifies (e.g. the server's secret changed): become a new guest
    // with the same nickname, once; a second refusal in a row is shown as a failure.
    if (Date.now() - unauthorizedAt < 30000) {
      setStatus("failed", "The server refused this session. Reload the page to start again.");
      return;
    }
    unauthorizedAt = Date.now();
    try {
      const fresh = await retrying(() => postSession(apiBase, { nickname: session.user.nickname }), "Renewing your session");
      session = { ...sessionFrom(fresh), confirmed: true };
      saveSession(session);
      showMe(fresh.user);
      conn.restart(fresh.token);
    } catch (err) {
      setStatus("failed", `Could not renew the session: ${err.message}`);
    }
  });

  $("nick-button").addEventListener("click", async () => {
    const before = session.token;
    session = await askNickname(apiBase, session, false);
    if (session.token !== before || session.user.nickname !== conn.user?.nickname) conn.restart(session.token);
  });

  wireComposer(conn);
  wireImages(conn, apiBase, () => session.token);
  conn.start();
}

function wireComposer(conn) {
  const form = $("composer");
  const input = $("composer-input");
  let lastTyping = 0;
  const grow = () => {
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight}px`;
  };
  input.addEventListener("input", () => {
    grow();
    showComposerError("");
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
      showComposerError(check.message || "");
      return;
    }
    conn.send(check.value);
    lastTyping = 0;
    input.value = "";
    grow();
    input.focus();
  });
}

/** The stored form of a `POST /api/session` answer: when the token expires, by this clock. */
function sessionFrom(fresh) {
  return { token: fresh.token, user: fresh.user, expiresAt: Date.now() + (fresh.expires_in_secs ?? 0) * 1000 };
}

/** Milliseconds until the session's token is renewed: half its remaining life. */
function refreshDelay(session) {
  if (!session.expiresAt) return 0;
  return Math.max(0, Math.min((session.expiresAt - Date.now()) / 2, 2 ** 31 - 1));
}

/** Images: picked with the button, pasted, or dropped on the room; each is sent as a message. */
function wireImages(conn, apiBase, token) {
  const input = $("image-input");
  const status = $("upload-status");
  let busy = false;
  const share = async (file) => {
    const check = checkImageFile(file);
    if (!check.ok) {
      showComposerError(check.message);
      return;
    }
    if (busy) {
      showComposerError("One image at a time: wait for the current one to finish uploading.");
      return;
    }
    busy = true;
    showComposerError("");
    status.textContent = `Uploading ${file.name || "image"}…`;
    status.hidden = false;
    try {
      const attachment = await uploadImage(apiBase, token(), file);
      conn.send("", attachment);
    } catch (err) {
      showComposerError(`Could not share ${file.name || "the image"}: ${err.message}`);
    } finally {
      busy = false;
      status.hidden = true;
      status.textContent = "";
    }
  };
  $("attach-button").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const [file] = input.files;
    input.value = "";
    if (file) share(file);
  });
  $("composer-input").addEventListener("paste", (event) => {
    const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      share(file);
    }
  });
  const room = $("room");
  room.addEventListener("dragover", (event) => {
    if ([...(event.dataTransfer?.types || [])].includes("Files")) {
      event.preventDefault();
      room.dataset.dropping = "true";
    }
  });
  room.addEventListener("dragleave", (event) => {
    if (event.target === room || !room.contains(event.relatedTarget)) delete room.dataset.dropping;
  });
  room.addEventListener("drop", (event) => {
    const file = event.dataTransfer?.files?.[0];
    delete room.dataset.dropping;
    if (!file) return;
    event.preventDefault();
    share(file);
  });
}

/** The nickname dialog. Resolves with the (possibly renamed) confirmed session. */
function askNickname(apiBase, session, firstVisit) {
  const dialog = $("nick-dialog");
  const form = $("nick-form");
  const input = $("nick-input");
  const errorEl = $("nick-error");
  const keep = $("nick-default");
  $("nick-title").textContent = firstVisit ? "Choose a nickname" : "Change your nickname";
  $("nick-intro").textContent = firstVisit
    ? `Others in the room will see this name. You can also stay “${session.user.nickname}”.`
    : "Others in the room will see the new name on your next messages.";
  keep.textContent = firstVisit ? `Continue as ${session.user.nickname}` : "Cancel";
  input.value = firstVisit ? "" : session.user.nickname;
  input.placeholder = session.user.nickname;
  const showError = (msg) => {
    errorEl.textContent = msg;
    errorEl.hidden = !msg;
    input.setAttribute("aria-invalid", msg ? "true" : "false");
  };
  showError("");

  return new Promise((resolve) => {
    const done = (next) => {
      form.removeEventListener("submit", onSubmit);
      keep.removeEventListener("click", onKeep);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      saveSession(next);
      showMe(next.user);
      resolve(next);
    };
    const onKeep = () => done({ ...session, confirmed: true });
    const onCancel = (event) => {
      event.preventDefault();
      onKeep();
    };
    const onSubmit = async (event) => {
      event.preventDefault();
      const check = checkNickname(input.value);
      if (!check.ok) {
        showError(check.message);
        input.focus();
        return;
      }
      if (check.value === session.user.nickname) return onKeep();
      try {
        const fresh = await postSession(apiBase, { token: session.token, nickname: check.value });
        done({ ...sessionFrom(fresh), confirmed: true });
      } catch (err) {
        showError(err instanceof ApiError ? err.message : `Could not save the nickname: ${err.message}`);
        input.focus();
      }
    };
    form.addEventListener("submit", onSubmit);
    keep.addEventListener("click", onKeep);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    input.focus();
  });
}

/** Retries an HTTP call with backoff while the server is unreachable, showing progress. */
async function retrying(fn, what) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status >= 400 && err.status < 500)) throw err;
      setStatus("reconnecting", `${what}: ${err.message} Retrying…`);
      await new Promise((r) => setTimeout(r, backoffDelay(attempt)));
    }
  }
}

// ---------------------------------------------------------------- small views

const STATUS_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  online: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline: waiting for the network",
  unauthorized: "Session expired: renewing…",
  failed: "Connection failed",
};

function setStatus(state, text) {
  const el = $("conn-status");
  el.dataset.state = state;
  el.textContent = text || STATUS_TEXT[state] || state;
  document.body.dataset.connection = state;
}

function showMe(user) {
  $("me-nick").textContent = user.nickname;
  paintAvatar($("me-avatar"), user);
  $("nick-button").setAttribute("aria-label", `You are ${user.nickname}. Change nickname`);
}

function showServer(server) {
  const badge = $("server-badge");
  const color = String(server?.color || "unknown");
  badge.textContent = color;
  badge.dataset.color = color;
  badge.title = `Served by the ${color} deployment (task ${server?.task ?? "?"}, version ${server?.version ?? "?"})`;
  badge.setAttribute("aria-label", `Server colour: ${color}`);
  badge.hidden = false;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const MODERATOR_KEY = "chat.moderator";

/**
 * A moderator credential from the link (`#moderator=…`, see README "Moderation"), kept for
 * this tab only and taken out of the address bar, so a link copied from it never carries it.
 */
function moderatorCredential() {
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

/** The "moderating as" badge; a credential the server refused is forgotten. */
function showModerator(conn) {
  const badge = $("moderator-badge");
  badge.hidden = !conn.moderatorName;
  badge.textContent = conn.moderatorName ? `Moderating as ${conn.moderatorName}` : "";
  document.body.classList.toggle("moderating", Boolean(conn.moderatorName));
  if (conn.moderator && !conn.moderatorName) {
    conn.moderator = null;
    try {
      sessionStorage.removeItem(MODERATOR_KEY);
    } catch {
      // Nothing kept.
    }
  }
}

function showModStatus(msg) {
  const el = $("mod-status");
  el.textContent = msg;
  el.hidden = !msg;
}

function showParticipants(show) {
  $("participants").hidden = !show;
  $("online-toggle").setAttribute("aria-expanded", String(show));
}

function showComposerError(msg) {
  const el = $("composer-error");
  el.textContent = msg;
  el.hidden = !msg;
}

// ---------------------------------------------------------------- start

const route = parseRoute(location.pathname, location.search);
if (route.theme) applyTheme(route.theme);
followParentTheme(route.room ?? null);

if (route.view === "room") {
  openRoom(route).catch((err) => setStatus("failed", `Could not open the room: ${err.message}`));
} else {
  showLanding(route);
}
