// Live campaign figures: refresh the table every 5 s; the polite region speaks only on change.
(function () {
  "use strict";
  const table = document.getElementById("figures");
  if (!table) return;
  const api = table.dataset.api;
  const progress = document.getElementById("progress");
  const updated = document.getElementById("updated");
  const statusEl = document.getElementById("campaign-status");

  function sentence(f) {
    const done = f.contacts - f.remaining;
    return done + " of " + f.contacts + " contacts finished; " + f.live + " calls in progress.";
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
      const text = sentence(body.figures);
      if (progress.textContent !== text) progress.textContent = text;
      if (statusEl.textContent !== body.status) statusEl.textContent = body.status;
      updated.dateTime = body.at;
      updated.textContent = body.at.slice(11, 19) + " UTC";
    } catch (err) {
      // Offline for a moment: keep the last figures; the next refresh tries again.
    }
  }
  window.setInterval(refresh, 5000);
})();
