"use strict";
// Every value from the registry goes into the page as text (textContent), never as markup.

const $ = (id) => document.getElementById(id);

function cell(tag, text, className) {
  const c = document.createElement(tag);
  c.textContent = text;
  if (className) c.className = className;
  return c;
}

function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes, u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u ? n.toFixed(1) : n) + " " + units[u];
}

function render(view) {
  const status = $("status");
  status.textContent = view.agree ? "the replicas agree" : "the replicas do NOT agree";
  status.className = view.agree ? "agree" : "differ";

  $("replicas").replaceChildren(...view.replicas.map((r) => r.error
    ? cell("li", r.host + ": cannot be read: " + r.error, "error")
    : cell("li", r.host + ": " + r.images + " image(s)")));

  const columns = ["repository", "tag", "digest", "size"].map((t) => cell("th", t));
  columns.push(...view.replicas.map((r) => cell("th", r.host)));
  $("columns").replaceChildren(...columns);

  if (!view.images.length) {
    const none = cell("td", "no image on the replicas that answered");
    none.colSpan = columns.length;
    const row = document.createElement("tr");
    row.append(none);
    $("rows").replaceChildren(row);
    return;
  }
  $("rows").replaceChildren(...view.images.map((i) => {
    const row = document.createElement("tr");
    if (i.missing_on.length) row.className = "partial";
    const sz = cell("td", size(i.size), "size");
    sz.title = i.size + " bytes";
    row.append(cell("td", i.repository), cell("td", i.tag), cell("td", i.digest, "digest"), sz);
    for (const r of view.replicas) {
      let c;
      if (i.held_by.includes(r.host)) c = cell("td", "✓", "held");
      else if (i.missing_on.includes(r.host)) c = cell("td", "missing", "missing");
      else c = cell("td", "?", "unknown");
      c.dataset.host = r.host;
      row.append(c);
    }
    return row;
  }));
}

async function refresh() {
  const button = $("refresh");
  button.disabled = true;
  $("status").textContent = "reading the replicas…";
  $("status").className = "";
  try {
    const res = await fetch("catalog.json", { cache: "no-store" });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
    render(body);
  } catch (e) {
    $("status").textContent = "failed: " + e.message;
    $("status").className = "failed";
  } finally {
    button.disabled = false;
  }
}

$("refresh").addEventListener("click", refresh);
refresh();
