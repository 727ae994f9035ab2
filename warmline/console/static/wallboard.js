// The wallboard: polls the agents' states and announces changes politely in the status region.
// A wallboard that silently stops updating is worse than none, so staleness is announced too.
"use strict";
(() => {
  const POLL_MS = 3000, STALE_MS = 10000;
  const body = document.querySelector("#agents tbody");
  const status = document.getElementById("status");
  const stale = document.getElementById("stale");
  const freshness = document.getElementById("freshness");
  const wl = window.wl;
  let previous = null, lastOk = 0, staleShown = false, breaks = {};

  // The same names as the server's (agents.ledger.STATE_NAMES).
  const STATES = {
    logged_out: t("logged out"),
    available: t("available"),
    on_call: t("on call"),
    wrap_up: t("in wrap-up"),
    break: t("on break"),
  };
  const label = (state) => STATES[state] || state.replace("_", " ");

  function cell(row, text, cls) {
    const td = document.createElement(row.children.length ? "td" : "th");
    if (!row.children.length) td.scope = "row";
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function quality(a) {
    if (a.mos === null) return t("no call yet");
    const mos = a.mos.toFixed(1);
    return a.poor_line ? t("{mos} (poor line)", { mos: mos }) : mos;
  }

  // Break minutes of the allowance this shift; over it is said in words, not only in colour.
  function breakText(a) {
    const b = breaks[a.agent];
    if (!b) return "";
    const used = { taken: b.taken_min, allowance: b.allowance_min };
    return b.over ? t("{taken} of {allowance} min (over)", used) : t("{taken} of {allowance} min", used);
  }

  async function pollBreaks() {
    try {  // a missing breaks column must not stop the states from updating
      const resp = await fetch("/api/workforce/breaks", { credentials: "same-origin" });
      if (resp.ok) breaks = Object.fromEntries((await resp.json()).agents.map((b) => [b.agent, b]));
    } catch (err) {
      breaks = {};
    }
  }

  function draw(agents) {
    body.replaceChildren(...agents.map((a) => {
      const tr = document.createElement("tr");
      cell(tr, a.display_name);
      cell(tr, label(a.state), "state-" + a.state);
      cell(tr, wl.time(a.since));
      cell(tr, wl.duration(a.talking_today_s));
      cell(tr, quality(a), a.poor_line ? "poor" : "");
      cell(tr, breakText(a), breaks[a.agent] && breaks[a.agent].over ? "over" : "");
      return tr;
    }));
  }

  function announce(agents) {
    if (previous === null) {
      status.textContent = t("{n} agents shown.", { n: agents.length });
      return;
    }
    const changes = agents.filter((a) => previous[a.agent] && previous[a.agent] !== a.state)
      .map((a) => t("{name} is now {state}.", { name: a.display_name, state: label(a.state) }));
    if (changes.length) status.textContent = changes.join(" ");
  }

  async function poll() {
    try {
      const resp = await fetch("/api/agents/wallboard", { credentials: "same-origin" });
      if (!resp.ok) throw new Error(t("the server answered {status}", { status: resp.status }));
      const data = await resp.json();
      await pollBreaks();
      announce(data.agents);
      previous = Object.fromEntries(data.agents.map((a) => [a.agent, a.state]));
      draw(data.agents);
      lastOk = Date.now();
      freshness.textContent = t("Updated {time}.", { time: wl.time(new Date().toISOString(), true) });
      if (staleShown) {
        stale.textContent = "";
        staleShown = false;
        status.textContent = t("Wallboard is live again.");
      }
    } catch (err) {
      if (Date.now() - lastOk > STALE_MS && !staleShown) {
        stale.textContent = t("Wallboard is not updating ({reason}); figures may be out of date.",
          { reason: err.message });
        staleShown = true;
      }
    }
  }
  poll();
  setInterval(poll, POLL_MS);
})();
