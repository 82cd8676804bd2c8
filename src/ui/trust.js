"use strict";
// The trust view: the rows `regboot certs check -i` reads, anything not valid marked.

const STATUS = { "valid": "ok", "expires-soon": "expires soon", "expired": "EXPIRED", "invalid": "INVALID" };

function render(trust) {
  $("note").textContent = trust.note || "Marked: expires within renew_before_days (" +
    trust.renew_before_days + " days), expired, missing or not what the state directory holds.";
  const marked = trust.rows.filter((r) => r.status !== "valid");
  if (!trust.rows.length) say("status", "nothing to check");
  else say("status", marked.length ? marked.length + " of " + trust.rows.length + " need attention"
    : "all " + trust.rows.length + " valid", marked.length ? "differ" : "agree");
  $("rows").replaceChildren(...trust.rows.map((r) => {
    const tr = row([
      cell("td", r.name),
      cell("td", r.path),
      cell("td", r.subject || "-"),
      cell("td", r.not_after || "-"),
      cell("td", r.renew_on || "-"),
      cell("td", STATUS[r.status] || r.status, "status"),
      cell("td", r.problem || ""),
    ], r.status === "valid" ? "valid" : "marked");
    tr.dataset.name = r.name;
    tr.dataset.status = r.status;
    return tr;
  }));
}

async function refresh() {
  $("refresh").disabled = true;
  say("status", "reading the hosts…");
  try {
    render(await getJSON("trust.json"));
  } catch (e) {
    say("status", "failed: " + e.message, "failed");
  } finally {
    $("refresh").disabled = false;
  }
}

$("refresh").addEventListener("click", refresh);
refresh();
