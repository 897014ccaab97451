// @ts-check
// Message ids (client_msg_id) that work on every page: crypto.randomUUID exists only in secure
// contexts (HTTPS, localhost), so a page served over plain HTTP on a LAN name or IP builds the
// same random v4 UUID from crypto.getRandomValues, which every context has.

/**
 * A random v4 UUID. `c` is the Web Crypto object (injectable for tests); without
 * getRandomValues at all (very old engines) Math.random fills the bytes: the id only needs to be
 * unique among one user's recent sends, not unguessable.
 */
export function newId(c = globalThis.crypto) {
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof c?.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
