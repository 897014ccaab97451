// @ts-check
// A room page: settles the guest identity, then wires the room's connection to the page by
// concern — the messages (timeline, catch-up, read receipts, my rooms' read position), the
// people (presence, typing), moderation, the session's life, and the header's tools. Each
// `follow*` function owns the connection events of its concern.

import { endpoints, roomUrl, carriedQuery } from "./endpoints.js";
import { getHistory, messageOf } from "./api.js";
import { saveSession } from "./session.js";
import { ChatConnection } from "./connection.js";
import { Timeline } from "./timeline.js";
import { SeenBy } from "./receipts.js";
import { Reactions } from "./reactions.js";
import { ReplyDraft, decorateReply, markQuotesRemoved } from "./replies.js";
import { mentions, wireMentions } from "./mentions.js";
import { markModerator } from "./badge.js";
import { Presence } from "./presence.js";
import { Attention } from "./attention.js";
import { retitleAvatars } from "./avatar.js";
import { byId } from "./dom.js";
import { FIRST_PAGE } from "./limits.js";
import { formatTime, onLanguageChange, serverMessage, setText, t } from "./i18n.js";
import { currentSession, keepFresh, newGuestLike } from "./identity.js";
import { askNickname } from "./nickname.js";
import { wireComposer } from "./composer.js";
import { wireImages } from "./imagepicker.js";
import { wireShare } from "./share.js";
import { moderatorCredential, forgetModeratorCredential } from "./moderator.js";
import { catchUp } from "./catchup.js";
import { outboxStore, clearOutbox } from "./outboxstore.js";
import { rememberRoom, markRoomRead, forgetRoom } from "./myrooms.js";
import { setStatus, showMe, showServer, showModeratorBadge, showParticipants, showComposerError, showLine } from "./views.js";

/** @typedef {import("./session.js").Session} Session */
/** @typedef {import("./session.js").User} User */

/**
 * What the concerns share: the connection, the views, and how to name people.
 * @typedef {object} RoomContext
 * @property {string} apiBase
 * @property {string} room
 * @property {ChatConnection} conn
 * @property {Timeline} timeline
 * @property {SeenBy} seenBy
 * @property {Reactions} reactions
 * @property {ReplyDraft} replyDraft
 * @property {() => string[]} peopleNames  nicknames of the room's people, for @ completion
 * @property {Presence} presence
 * @property {Attention} attention
 * @property {() => User | null} me
 * @property {(users: (User | undefined)[]) => void} learn  remembers nicknames by id
 * @property {() => void} markRead
 */

/** @param {{ room: string, title: string | null }} route */
export async function openRoom({ room, title }) {
  const { apiBase, wsUrl } = endpoints(location, window.CHAT_CONFIG || {});
  const roomTitle = () => title ?? t("room.defaultTitle", { room });
  byId("room").hidden = false;
  const titleEl = byId("room-title");
  if (title) titleEl.textContent = title;
  else setText(titleEl, "room.defaultTitle", { room });
  document.title = t("page.docTitle", { title: roomTitle() });
  if (window.matchMedia("(min-width: 52rem)").matches && window.parent === window) showParticipants(true);
  byId("online-toggle").addEventListener("click", () => showParticipants(byId("participants").hidden));
  rememberRoom(room, title);
  wireShare(roomUrl(location, room, title));

  let session = await currentSession(apiBase);
  showMe(session.user);
  if (!session.confirmed) session = await askNickname(apiBase, session, true);

  const conn = new ChatConnection({ url: wsUrl, token: session.token, room, moderator: moderatorCredential(), store: outboxStore(room) });
  keepFresh(apiBase, () => session, (s) => {
    session = s;
    conn.token = s.token;
  });
  const ctx = roomContext({ apiBase, room, conn, roomTitle, me: () => conn.user ?? session.user });
  followMessages(ctx);
  followPeople(ctx);
  followModeration(ctx);
  followSession(ctx, () => session, (s) => (session = s));
  onLanguageChange(() => {
    ctx.timeline.relabel();
    ctx.presence.relabel();
    ctx.seenBy.render();
    ctx.reactions.relabel();
    ctx.attention.relabel();
    retitleAvatars(document);
  });

  byId("nick-button").addEventListener("click", async () => {
    const before = session.token;
    session = await askNickname(apiBase, session, false);
    if (session.token !== before || session.user.nickname !== conn.user?.nickname) conn.restart(session.token);
  });
  byId("leave-button").addEventListener("click", () => {
    conn.stop();
    forgetRoom(room);
    clearOutbox(room);
    location.assign(`/${carriedQuery(location.search)}`);
  });
  wireMentions(byId("composer-input", HTMLTextAreaElement), byId("mention-list", HTMLUListElement), ctx.peopleNames);
  wireComposer(conn, ctx.replyDraft);
  wireImages(conn, apiBase, () => session.token);
  conn.start();
}

/**
 * The views of a room and the helpers its concerns share.
 * @param {{ apiBase: string, room: string, conn: ChatConnection, roomTitle: () => string, me: () => User }} o
 * @returns {RoomContext}
 */
function roomContext({ apiBase, room, conn, roomTitle, me }) {
  /** @type {Map<number, string>} user id → nickname, from messages and presence (for "Seen by"). */
  const names = new Map();
  const nameOf = (/** @type {number} */ id) => names.get(id) ?? t("mod.user", { id: String(id) });
  /** @type {Reactions} */
  const reactions = new Reactions({
    itemOf: (seq) => timeline.items.get(seq),
    me,
    nameOf,
    onToggle: (seq, emoji, on) => conn.react(seq, emoji, on) || showComposerError({ key: "send.notConnected" }),
  });
  const presence = new Presence({ countEl: byId("online-count"), listEl: byId("member-list"), typingEl: byId("typing"), me });
  const replyDraft = new ReplyDraft(byId("reply-bar"), byId("composer-input", HTMLTextAreaElement));
  const mentionsMe = (/** @type {{ user?: { id: number }, text?: string }} */ m) => m.user?.id !== me()?.id && mentions(m.text, me()?.nickname);
  const timeline = new Timeline({
    scroller: byId("scroller"),
    list: byId("messages"),
    pendingList: byId("pending"),
    pill: byId("new-pill"),
    loadOlderButton: byId("load-older", HTMLButtonElement),
    historyStart: byId("history-start"),
    me,
    fetchOlder: (before) => getHistory(apiBase, room, { before, limit: FIRST_PAGE }),
    onRetry: (id) => conn.retry(id),
    onDiscard: (id) => conn.discard(id),
    onError: showComposerError,
    onShown: (m) => {
      reactions.fromMessage(m);
      reactions.render(m.seq);
      const li = timeline.items.get(m.seq);
      if (!li) return;
      li.classList.toggle("mention", mentionsMe(m));
      if (m.moderator) markModerator(li);
      decorateReply(li, m, {
        onReply: (seq, nickname, snippet) => replyDraft.set(seq, nickname, snippet),
        onJump: async (seq) => {
          if (!(await timeline.reveal(seq))) showComposerError({ key: "reply.gone" });
        },
        isRemoved: (seq) => Boolean(timeline.items.get(seq)?.classList.contains("removed")),
      });
    },
    moderation: {
      active: () => Boolean(conn.moderatorName),
      onDelete: (seq) => conn.deleteMessage(seq) || showComposerError({ key: "send.notConnected" }),
      onMute: (user, secs) => {
        names.set(user.id, user.nickname);
        if (!conn.mute(user.id, secs)) showComposerError({ key: "send.notConnected" });
      },
    },
  });
  // The newest message is on screen while the page is visible: tell the server (throttled),
  // and remember it for the landing page's unread counts.
  const markRead = () => {
    if (document.visibilityState === "visible" && timeline.atBottom() && conn.lastSeq > 0) {
      conn.read(conn.lastSeq);
      markRoomRead(room, conn.lastSeq);
    }
  };
  byId("scroller").addEventListener("scroll", markRead, { passive: true });
  document.addEventListener("visibilitychange", markRead);
  return {
    apiBase,
    room,
    conn,
    timeline,
    me,
    markRead,
    learn: (users) => {
      for (const u of users) if (u?.id !== undefined) names.set(u.id, u.nickname);
    },
    reactions,
    replyDraft,
    peopleNames: () => {
      const mine = me()?.id;
      const people = new Map(names);
      for (const u of presence.members.values()) people.set(u.id, u.nickname);
      people.delete(mine ?? -1);
      return [...people.values()];
    },
    seenBy: new SeenBy({ list: byId("messages"), me, nameOf }),
    presence,
    attention: new Attention({
      title: () => t("page.docTitle", { title: roomTitle() }),
      roomTitle,
      room,
      bell: byId("notify-toggle", HTMLButtonElement),
      me,
      onError: showComposerError,
      mentionsMe,
    }),
  };
}

/** Messages: the first page, live ones, catch-ups, removals, my unsent ones, receipts. @param {RoomContext} ctx */
function followMessages({ apiBase, room, conn, timeline, seenBy, reactions, attention, learn, markRead }) {
  let firstJoin = true;
  conn.addEventListener("joined", async (e) => {
    const f = /** @type {CustomEvent} */ (e).detail;
    const messages = f.messages || [];
    learn(f.members || []);
    learn(messages.map((/** @type {any} */ m) => m.user));
    if (firstJoin) {
      firstJoin = false;
      timeline.showInitial(messages, messages.length >= FIRST_PAGE && messages[0].seq > 1);
    } else {
      attention.saw(timeline.addLive(messages));
    }
    try {
      await catchUp({
        apiBase,
        room,
        joined: f,
        onPage: (page) => {
          for (const m of page) conn.saw(m.seq);
          attention.saw(timeline.addLive(page));
        },
      });
    } catch (err) {
      showComposerError({ key: "catchup.failed", params: { error: messageOf(err) } });
    }
    seenBy.render();
    markRead();
  });
  conn.addEventListener("message", (e) => {
    const m = /** @type {CustomEvent} */ (e).detail;
    learn([m.user]);
    attention.saw(timeline.addLive([m]));
    seenBy.render();
    markRead();
  });
  conn.addEventListener("deleted", (e) => {
    timeline.removeMessage(/** @type {CustomEvent} */ (e).detail.message);
    markQuotesRemoved(byId("messages"), /** @type {CustomEvent} */ (e).detail.seq);
    seenBy.render();
  });
  conn.addEventListener("outbox", (e) => timeline.showPending(/** @type {CustomEvent} */ (e).detail));
  conn.addEventListener("receipts", (e) => seenBy.update(/** @type {CustomEvent} */ (e).detail.seen));
  conn.addEventListener("reactions", (e) => reactions.update(/** @type {CustomEvent} */ (e).detail.messages || []));
}

/** People: who is here, who joins and leaves, who types, renames. @param {RoomContext} ctx */
function followPeople({ conn, presence, learn }) {
  conn.addEventListener("joined", (e) => {
    const f = /** @type {CustomEvent} */ (e).detail;
    presence.reset(f.online, f.members);
  });
  conn.addEventListener("message", (e) => {
    const m = /** @type {CustomEvent} */ (e).detail;
    presence.stoppedTyping(m.user);
    presence.rename(m.user);
  });
  conn.addEventListener("presence", (e) => {
    const f = /** @type {CustomEvent} */ (e).detail;
    learn([f.joined]);
    presence.update(f);
  });
  conn.addEventListener("typing", (e) => presence.typing(/** @type {CustomEvent} */ (e).detail.user));
}

/** Moderation: the badge and controls once welcomed, and mutes (mine or by me). @param {RoomContext} ctx */
function followModeration({ conn, timeline, me, seenBy }) {
  conn.addEventListener("welcome", () => {
    showModeratorBadge(conn.moderatorName);
    if (conn.moderator && !conn.moderatorName) {
      // The server refused the credential: forget it.
      conn.moderator = null;
      forgetModeratorCredential();
    }
    timeline.refreshModeration();
  });
  conn.addEventListener("muted", (e) => {
    const { user_id: userId, until } = /** @type {CustomEvent} */ (e).detail;
    const time = formatTime(new Date(until));
    const active = until > Date.now();
    if (userId === me()?.id) {
      showComposerError(active ? { key: "mod.mutedMe", params: { time } } : { key: "mod.unmutedMe" });
    } else {
      const name = seenBy.nameOf(userId);
      showLine("mod-status", active ? { key: "mod.mutedOther", params: { name, time } } : { key: "mod.unmutedOther", params: { name } });
    }
  });
}

/**
 * The session's life on this connection: status, welcome, refusals, server errors.
 * @param {RoomContext} ctx
 * @param {() => Session} get
 * @param {(s: Session) => void} set
 */
function followSession({ apiBase, conn }, get, set) {
  let unauthorizedAt = 0;
  conn.addEventListener("state", (e) => setStatus(/** @type {CustomEvent} */ (e).detail.state));
  conn.addEventListener("welcome", (e) => {
    const { user, server } = /** @type {CustomEvent} */ (e).detail;
    const session = { ...get(), user };
    saveSession(session);
    set(session);
    showMe(user);
    showServer(server);
  });
  conn.addEventListener("server-error", (e) => {
    const f = /** @type {CustomEvent} */ (e).detail;
    showComposerError(serverMessage(f.code, f.message));
  });
  conn.addEventListener("unauthorized", async () => {
    // The token no longer verifies (e.g. the server's secret changed): become a new guest
    // with the same nickname, once; a second refusal in a row is shown as a failure.
    if (Date.now() - unauthorizedAt < 30000) {
      setStatus("failed", { key: "status.refused" });
      return;
    }
    unauthorizedAt = Date.now();
    try {
      const next = await newGuestLike(apiBase, { ...get(), confirmed: true });
      set(next);
      showMe(next.user);
      conn.restart(next.token);
    } catch (err) {
      setStatus("failed", { key: "status.renewFailed", params: { error: messageOf(err) } });
    }
  });
}
