"use strict";
// The catalog view: the list (filtered, sorted, shown a page at a time), a tag's details
// read when it is opened, and deleting a tag where the registry allows it.

const PAGE_ROWS = 100;
const state = { view: null, shown: [], page: 0, dates: null, open: null };

function render(view) {
  state.view = view;
  say("status", view.agree ? "the replicas agree" : "the replicas do NOT agree",
    view.agree ? "agree" : "differ");
  $("replicas").replaceChildren(...view.replicas.map((r) => r.error
    ? cell("li", r.host + ": cannot be read: " + r.error, "error")
    : cell("li", r.host + ": " + r.images + " image(s)")));
  const columns = ["repository", "tag", "digest", "size", "created"].map((t) => cell("th", t));
  columns.push(...view.replicas.map((r) => cell("th", r.host)));
  $("columns").replaceChildren(...columns);
  list();
}

// Filter and sort the whole list, then show one page of it.
function list() {
  const view = state.view;
  if (!view) return;
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const text = (i) => (i.repository + ":" + i.tag + " " + i.digest).toLowerCase();
  const shown = view.images.filter((i) => words.every((w) => text(i).includes(w)));
  const by = $("sort").value;
  const name = (a, b) => a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag);
  const date = (i) => (state.dates && state.dates[i.digest]) || "";
  if (by === "size") shown.sort((a, b) => b.size - a.size || name(a, b));
  else if (by === "date") shown.sort((a, b) => date(b).localeCompare(date(a)) || name(a, b));
  else shown.sort(name);
  state.shown = shown;
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_ROWS));
  state.page = Math.min(state.page, pages - 1);
  const first = state.page * PAGE_ROWS;
  const page = shown.slice(first, first + PAGE_ROWS);
  $("range").textContent = shown.length
    ? (first + 1) + "–" + (first + page.length) + " of " + shown.length
      + (shown.length < view.images.length ? " (filtered from " + view.images.length + ")" : "")
    : "none of " + view.images.length;
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
  if (!page.length) {
    const none = cell("td", view.images.length ? "nothing matches the filter"
      : "no image on the replicas that answered");
    none.colSpan = $("columns").children.length;
    $("rows").replaceChildren(row([none]));
    return;
  }
  $("rows").replaceChildren(...page.map((i) => imageRow(i, view)));
}

function imageRow(i, view) {
  const open = cell("button", i.tag, "open");
  open.type = "button";
  open.title = "details of " + i.repository + ":" + i.tag;
  open.addEventListener("click", () => details(i));
  const tag = document.createElement("td");
  tag.append(open);
  const sz = cell("td", size(i.size), "size");
  sz.title = i.size + " bytes";
  const r = row([cell("td", i.repository), tag, cell("td", i.digest, "digest"), sz,
    cell("td", (state.dates && state.dates[i.digest]) || "", "created")],
    i.missing_on.length ? "partial" : "");
  r.dataset.ref = i.repository + ":" + i.tag;
  for (const rep of view.replicas) {
    let c;
    if (i.held_by.includes(rep.host)) c = cell("td", "✓", "held");
    else if (i.missing_on.includes(rep.host)) c = cell("td", "missing", "missing");
    else c = cell("td", "?", "unknown");
    c.dataset.host = rep.host;
    r.append(c);
  }
  return r;
}

// The pull command with a copy button.
function pull(label, command) {
  const copy = cell("button", "copy", "copy");
  copy.type = "button";
  copy.dataset.command = command;
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(command);
      copy.textContent = "copied";
    } catch (e) {
      copy.textContent = "copy failed (" + e.message + "): select the text";
    }
  });
  const dd = document.createElement("dd");
  dd.append(cell("code", command, "pull"), " ", copy);
  return [cell("dt", label), dd];
}

function table(head, rows) {
  const t = document.createElement("table");
  const h = document.createElement("thead");
  h.append(row(head.map((x) => cell("th", x))));
  const b = document.createElement("tbody");
  b.append(...rows);
  t.append(h, b);
  return t;
}

function imageDetails(img) {
  const box = document.createElement("div");
  box.className = "image";
  box.dataset.platform = img.platform;
  box.append(cell("h3", (img.platform || "unknown platform") + "  " + img.digest));
  const facts = document.createElement("dl");
  facts.append(cell("dt", "created"), cell("dd", img.created || "-", "created"),
    cell("dt", "size"), cell("dd", size(img.size) + " (" + img.size + " bytes)"),
    cell("dt", "config"), cell("dd", img.config_digest || "-", "digest"));
  box.append(facts);
  if (img.error) box.append(cell("p", "could not read: " + img.error, "error"));
  const labels = Object.entries(img.labels);
  box.append(cell("h4", "labels"), labels.length
    ? table(["label", "value"], labels.map(([k, v]) => row([cell("td", k), cell("td", v)], "label")))
    : cell("p", "none"));
  box.append(cell("h4", "layers (" + img.layers.length + ")"), table(["digest", "size", "media type"],
    img.layers.map((l) => {
      const r = row([cell("td", l.digest, "digest"), cell("td", size(l.size), "size"), cell("td", l.media_type)], "layer");
      r.dataset.digest = l.digest;
      r.dataset.size = l.size;
      return r;
    })));
  return box;
}

async function details(i) {
  const view = state.view;
  state.open = i;
  $("details").hidden = false;
  $("details-title").textContent = i.repository + ":" + i.tag;
  const name = view.registry + "/" + i.repository;
  $("details-pull").replaceChildren(...pull("pull by tag", "docker pull " + name + ":" + i.tag),
    ...pull("pull by digest", "docker pull " + name + "@" + i.digest));
  $("delete").hidden = !view.delete_enabled;
  $("details-images").replaceChildren();
  say("details-status", "reading " + i.repository + ":" + i.tag + " from " + i.held_by[0] + "…");
  $("details").scrollIntoView();
  try {
    const q = new URLSearchParams({ host: i.held_by[0], repo: i.repository, ref: i.tag });
    const d = await getJSON("details.json?" + q);
    if (state.open !== i) return;
    say("details-status", (d.index ? "an index of " + d.images.length + " manifest(s)" : "an image")
      + ", " + (d.media_type || "no media type") + ", " + d.digest);
    $("details-images").replaceChildren(...d.images.map(imageDetails));
  } catch (e) {
    say("details-status", "failed: " + e.message, "failed");
  }
}

// The other tags of the same repository on the same digest go with a delete.
function confirmDelete() {
  const i = state.open;
  const others = state.view.images.filter((x) => x.repository === i.repository
    && x.digest === i.digest && x.tag !== i.tag).map((x) => x.tag);
  $("confirm-text").textContent = "Delete " + i.repository + ":" + i.tag + "? This deletes manifest "
    + i.digest + (others.length ? " and with it " + others.length + " other tag(s):" : "; no other tag points at it.");
  $("confirm-tags").replaceChildren(...others.map((t) => cell("li", i.repository + ":" + t)));
  $("confirm").showModal();
}

async function doDelete() {
  const i = state.open;
  $("confirm").close();
  const q = new URLSearchParams({ repo: i.repository, digest: i.digest });
  try {
    const res = await getJSON("delete?" + q, { method: "POST", headers: { "x-regboot-csrf": state.view.csrf } });
    const on = res.hosts.filter((h) => h.deleted).map((h) => h.host);
    notice("Deleted " + i.repository + "@" + i.digest + " (on " + (on.join(", ") || "no replica: it was already gone")
      + "). Its space comes back with `regboot gc`.", "agree");
    $("details").hidden = true;
  } catch (e) {
    notice("Delete failed: " + e.message, "failed");
  }
  refresh();
}

function notice(text, className) {
  $("notice").hidden = false;
  say("notice", text, className);
}

async function refresh() {
  $("refresh").disabled = true;
  say("status", "reading the replicas…");
  try {
    state.dates = null;
    render(await getJSON("catalog.json"));
    if ($("sort").value === "date") await readDates();
  } catch (e) {
    say("status", "failed: " + e.message, "failed");
  } finally {
    $("refresh").disabled = false;
  }
}

// Created dates are read only when the list is sorted by date.
async function readDates() {
  if (state.dates) return list();
  say("status", "reading the created dates…");
  try {
    state.dates = await getJSON("dates.json");
    say("status", state.view.agree ? "the replicas agree" : "the replicas do NOT agree",
      state.view.agree ? "agree" : "differ");
  } catch (e) {
    say("status", "failed to read the dates: " + e.message, "failed");
  }
  list();
}

$("refresh").addEventListener("click", refresh);
$("filter").addEventListener("input", () => { state.page = 0; list(); });
$("sort").addEventListener("change", () => { state.page = 0; $("sort").value === "date" ? readDates() : list(); });
$("prev").addEventListener("click", () => { state.page--; list(); });
$("next").addEventListener("click", () => { state.page++; list(); });
$("delete").addEventListener("click", confirmDelete);
$("confirm-cancel").addEventListener("click", () => $("confirm").close());
$("confirm-delete").addEventListener("click", doDelete);
refresh();
