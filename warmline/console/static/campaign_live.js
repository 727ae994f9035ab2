// Live campaign figures: refresh the table every 5 s; the polite region speaks only on change.
(function () {
  "use strict";
  const table = document.getElementById("figures");
  if (!table) return;
  const api = table.dataset.api;
  const progress = document.getElementById("progress");
  const updated = document.getElementById("updated");
  const statusEl = document.getElementById("campaign-status");
  const pacingTable = document.getElementById("pacing");
  const pacingReason = document.getElementById("pacing-reason");
  const faultsEl = document.getElementById("faults");
  // The same names as the server's (dialer.models.STATUS_NAMES).
  const STATUS = { draft: t("draft"), running: t("running"), paused: t("paused"), finished: t("finished") };

  // The same sentence as the server's (warmline.console.live.progress_sentence).
  function sentence(f) {
    return t("{done} of {contacts} contacts finished; {live} calls in progress.",
      { done: f.contacts - f.remaining, contacts: f.contacts, live: f.live });
  }

  // The same notice as the server's (warmline.console.live.fault_notice).
  function notice(faults) {
    const parts = [];
    const degraded = (faults && faults.degraded) || [];
    if (degraded.includes("database")) {
      parts.push(t("The database is unreachable: no new call is started, calls in progress go on and their outcomes are kept until it is back ({n} waiting).",
        { n: faults.journal_pending || 0 }));
    }
    if (degraded.includes("bus")) {
      parts.push(t("The event bus is unreachable: events are kept and sent when it is back."));
    }
    if (degraded.includes("ari_slow")) {
      const ari = faults.ari || {};
      parts.push(t("Asterisk is answering slowly ({ms} ms): new calls are slowed down, at most {window} started at once ({held} held back so far).",
        { ms: ari.ms || 0, window: ari.window || 0, held: ari.held_back || 0 }));
    }
    return parts.join(" ");
  }

  async function refresh() {
    try {
      const resp = await fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) return;
      const body = await resp.json();
      for (const cell of table.querySelectorAll("td[data-figure]")) {
        const value = body.figures[cell.dataset.figure];
        if (value !== undefined && cell.textContent !== String(value)) cell.textContent = String(value);
      }
      // The pacer's figures and reason come said in the page's language (dialer.stats.pacing_figures).
      if (body.pacing && pacingTable) {
        for (const cell of pacingTable.querySelectorAll("td[data-pacing]")) {
          const value = body.pacing.shown[cell.dataset.pacing];
          if (value !== undefined && cell.textContent !== String(value)) cell.textContent = String(value);
        }
        if (pacingReason.textContent !== body.pacing.reason_text) pacingReason.textContent = body.pacing.reason_text;
      }
      const text = sentence(body.figures);
      if (progress.textContent !== text) progress.textContent = text;
      const status = STATUS[body.status] || body.status;
      if (statusEl.textContent !== status) statusEl.textContent = status;
      if (faultsEl) {
        const said = notice(body.faults);
        if (faultsEl.textContent !== said) faultsEl.textContent = said;
        faultsEl.hidden = !said;
      }
      updated.dateTime = body.at;
      updated.textContent = window.wl.time(body.at, true);
    } catch (err) {
      // Offline for a moment: keep the last figures; the next refresh tries again.
    }
  }
  window.setInterval(refresh, 5000);
})();
