// @ts-check
// The web client's entry point: picks the language and theme, follows an embedding page, and
// opens what the URL asks for — the landing page, a room (`/room/{room}`) or its projector view
// (`?view=projector`). Each of those lives in its own module under js/.

import { parseRoute } from "./js/endpoints.js";
import { applyTheme } from "./js/theme.js";
import { followParent } from "./js/embedding.js";
import { pickLang, setLang, t } from "./js/i18n.js";
import { icon } from "./js/avatar.js";
import { showLanding } from "./js/landing.js";
import { openRoom } from "./js/room.js";
import { openProjector } from "./js/projector.js";
import { setStatus } from "./js/views.js";
import { messageOf } from "./js/api.js";

const route = parseRoute(location.pathname, location.search);
setLang(pickLang(location.search, navigator.languages));
if (route.theme) applyTheme(route.theme);
followParent(route.view === "landing" ? null : route.room);
for (const el of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-icon]"))) {
  el.replaceChildren(icon(/** @type {"bell" | "picture" | "link"} */ (el.dataset.icon)));
}

if (route.view === "room") {
  openRoom(route).catch((err) => setStatus("failed", { key: "status.openFailed", params: { error: messageOf(err) } }));
} else if (route.view === "projector") {
  openProjector(route).catch((err) => {
    byIdText("projector-status", t("status.openFailed", { error: messageOf(err) }));
  });
} else {
  showLanding(route);
}

/** @param {string} id @param {string} text */
function byIdText(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}
