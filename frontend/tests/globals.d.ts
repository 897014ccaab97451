// What the web client finds on window besides the DOM: the deployment overrides of config.js.
interface Window {
  CHAT_CONFIG?: { apiBase?: string; wsBase?: string };
}
