// Deployment overrides for the web client, loaded before the app. The shipped file overrides
// nothing: the API and WebSocket are reached on the page's own origin. To serve the page from a
// different host than the API (e.g. S3/CloudFront in front of an ALB on another name), replace
// this file when deploying, e.g.:
//   window.CHAT_CONFIG = { apiBase: "https://chat-api.example.com", wsBase: "wss://chat-api.example.com" };
// apiBase is the origin (plus optional path prefix) that serves /api/*; wsBase the one serving /ws.
window.CHAT_CONFIG = window.CHAT_CONFIG || {};
