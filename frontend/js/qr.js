// @ts-check
// QR codes of a room's address, made in the browser by the vendored qrcode-generator
// (vendor/qrcode.js, MIT, Kazuhiko Arase; npm qrcode-generator 2.0.4): no outside service sees
// who shares what. Drawn as SVG, dark on white whatever the theme (scanners need it), with
// the standard 4-module quiet zone.

import qrcode from "../vendor/qrcode.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const QUIET = 4;

/**
 * The modules of `text`'s QR code (error correction M, the smallest version that fits).
 * @param {string} text
 * @returns {boolean[][]} rows of dark (true) and light modules
 */
export function qrModules(text) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => qr.isDark(r, c)));
}

/**
 * An `<svg role="img">` of `text`'s QR code, named `label` for assistive technology.
 * @param {string} text
 * @param {string} label
 */
export function qrSvg(text, label) {
  const modules = qrModules(text);
  const size = modules.length + 2 * QUIET;
  let d = "";
  modules.forEach((row, r) => row.forEach((dark, c) => {
    if (dark) d += `M${c + QUIET} ${r + QUIET}h1v1h-1z`;
  }));
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.classList.add("qr");
  const bg = document.createElementNS(SVG_NS, "rect");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  bg.setAttribute("fill", "#fff");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  return svg;
}
