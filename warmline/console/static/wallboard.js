// The wallboard: polls the agents' states and announces changes politely in the status region.
// A wallboard that silently stops updating is worse than none, so staleness is announced too.
"use strict";
(() => {
  const POLL_MS = 3000, STALE_MS = 10000;
  const body = document.querySelector("#agents tbody");
  const status = document.getElementById("status");
  const stale = document.getElementById("stale");
  const freshness = document.getElementById("freshness");
  let previous = null, lastOk = 0, staleShown = false;

  const minutes = (s) => `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  const label = (state) => state.replace("_", " ");
  const time = (iso) => iso ? new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) : "";

  function cell(row, text, cls) {
    const td = document.createElement(row.children.length ? "td" : "th");
    if (!row.children.length) td.scope = "row";
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function draw(agents) {
    body.replaceChildren(...agents.map((a) => {
      const tr = document.createElement("tr");
      cell(tr, a.display_name);
      cell(tr, label(a.state), `state-${a.state}`);
      cell(tr, time(a.since));
      cell(tr, minutes(a.talking_today_s));
      cell(tr, a.mos === null ? "no call yet" : `${a.mos.toFixed(1)}${a.poor_line ? " (poor line)" : ""}`,
           a.poor_line ? "poor" : "");
      return tr;
    }));
  }

  function announce(agents) {
    if (previous === null) { status.textContent = `${agents.length} agents shown.`; return; }
    const changes = agents.filter((a) => previous[a.agent] && previous[a.agent] !== a.state)
      .map((a) => `${a.display_name} is now ${label(a.state)}`);
    if (changes.length) status.textContent = changes.join(". ") + ".";
  }

  async function poll() {
    try {
      const resp = await fetch("/api/agents/wallboard", {credentials: "same-origin"});
      if (!resp.ok) throw new Error(`the server answered ${resp.status}`);
      const data = await resp.json();
      announce(data.agents);
      previous = Object.fromEntries(data.agents.map((a) => [a.agent, a.state]));
      draw(data.agents);
      lastOk = Date.now();
      freshness.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
      if (staleShown) { stale.textContent = ""; staleShown = false; status.textContent = "Wallboard is live again."; }
    } catch (err) {
      if (Date.now() - lastOk > STALE_MS && !staleShown) {
        stale.textContent = `Wallboard is not updating (${err.message}); figures may be out of date.`;
        staleShown = true;
      }
    }
  }
  poll();
  setInterval(poll, POLL_MS);
})();
