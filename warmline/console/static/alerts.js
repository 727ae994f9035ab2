// Welfare alerts page: poll for alerts raised after the newest one shown, add them to the table
// with the same keyboard-operable forms the server renders, and announce each through the page's
// live status region. Without this script the page still works (reload to see new alerts).
"use strict";

(function () {
  const table = document.getElementById("alerts-table");
  if (!table) return;
  const body = document.getElementById("alerts-body");
  const status = document.getElementById("status");
  const canAct = table.dataset.canAct === "yes";
  let latest = parseInt(table.dataset.latest || "0", 10);
  const every = Math.max(1, parseInt(table.dataset.poll || "5", 10)) * 1000;

  const el = window.wl.el;
  // The same names as the server's (dialer.welfare.service.STATE_NAMES).
  const STATES = { open: t("open"), acknowledged: t("acknowledged"), resolved: t("resolved") };

  function actions(a) {
    if (!canAct) return el("td", {}, "—");
    const cell = el("td", {});
    if (a.state === "open") {
      cell.append(
        el("form", { method: "post", action: "/console/alerts/" + a.id + "/acknowledge", class: "inline" },
          el("button", { type: "submit" }, t("Acknowledge alert {id}", { id: a.id })))
      );
    }
    cell.append(
      el("form", { method: "post", action: "/console/alerts/" + a.id + "/resolve", class: "inline" },
        el("label", { for: "resolution-" + a.id }, t("Resolution for alert {id}", { id: a.id })),
        el("input", { id: "resolution-" + a.id, name: "resolution", maxlength: "2000", required: true }),
        el("button", { type: "submit" }, t("Resolve alert {id}", { id: a.id })))
    );
    return cell;
  }

  function row(a) {
    return el("tr", { id: "alert-" + a.id },
      el("th", { scope: "row" }, el("span", { "aria-hidden": "true" }, a.summary),
        el("span", { class: "visually-hidden" }, a.spoken)),
      el("td", {}, window.wl.when(a.created_at)),
      el("td", {}, STATES[a.state] || a.state),
      actions(a));
  }

  async function poll() {
    try {
      const resp = await fetch("/api/welfare/alerts?state=unresolved&since_id=" + latest, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!resp.ok) return;
      const data = await resp.json();
      const fresh = (data.alerts || []).filter((a) => a.id > latest).sort((x, y) => x.id - y.id);
      if (!fresh.length) return;
      const none = document.getElementById("alerts-none");
      if (none) none.remove();
      for (const a of fresh) {
        if (!document.getElementById("alert-" + a.id)) body.prepend(row(a));
        latest = Math.max(latest, a.id);
      }
      const words = fresh.map((a) => a.spoken).join(" ");
      status.textContent = fresh.length === 1
        ? t("New welfare alert: {alerts}", { alerts: words })
        : t("{n} new welfare alerts: {alerts}", { n: fresh.length, alerts: words });
    } catch (err) {
      // The network came back or did not: try again at the next tick; nothing to announce.
    } finally {
      window.setTimeout(poll, every);
    }
  }

  window.setTimeout(poll, every);
})();
