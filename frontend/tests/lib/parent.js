// A stand-in for a blog post that embeds the room in an iframe: a tiny HTTP server on another
// loopback port (so another origin) whose page can post theme messages into the frame.

import http from "node:http";
import { freePort } from "./server.js";

/**
 * @param {string} chatUrl the room the page frames
 * @param {object} [o]
 * @param {number} [o.port] listen here (pick it first when the chat server must list this
 *   page's origin in CHAT_FRAME_ANCESTORS before it starts)
 */
export async function startParentPage(chatUrl, { port } = {}) {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog post</title>
<style>body{font-family:sans-serif;margin:1rem} iframe{width:760px;height:520px;border:1px solid #999}</style></head>
<body>
<h1>Live blog</h1>
<iframe id="chat" title="Live chat" src="${chatUrl}" onload="window.frameLoads++"></iframe>
<script>
  window.chatReady = 0;
  window.frameLoads = window.frameLoads || 0;
  window.addEventListener("message", (e) => { if (e.data && e.data.type === "chat:ready") window.chatReady++; });
  window.setChatTheme = (theme) =>
    document.getElementById("chat").contentWindow.postMessage({ type: "theme", theme }, "*");
</script>
</body></html>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  port ??= await freePort();
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
