"use strict";
// Helpers both views share. Every value from the registry or the hosts goes into the page as
// text (textContent), never as markup.

const $ = (id) => document.getElementById(id);

function cell(tag, text, className) {
  const c = document.createElement(tag);
  c.textContent = text;
  if (className) c.className = className;
  return c;
}

function row(cells, className) {
  const r = document.createElement("tr");
  r.append(...cells);
  if (className) r.className = className;
  return r;
}

function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes, u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u ? n.toFixed(1) : n) + " " + units[u];
}

// GET or POST a JSON answer; an error answer's message becomes the thrown Error's.
async function getJSON(url, options) {
  const res = await fetch(url, Object.assign({ cache: "no-store" }, options));
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
  return body;
}

function say(id, text, className) {
  $(id).textContent = text;
  $(id).className = className || "";
}
