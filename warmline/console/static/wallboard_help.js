// The wallboard's help panel: agents asking for help (announced assertively the moment they ask),
// and who is resting after an abusive call (check in with them). On a request, a button each for
// listen, whisper (the agent alone hears you) and join -- or the keys L, W, J on the focused request.
"use strict";
(() => {
  const POLL_MS = 3000;
  const list = document.getElementById("help-requests");
  const resting = document.getElementById("help-cooldowns");
  const alert = document.getElementById("help-alert");
  const phone = document.getElementById("help-phone");
  const wl = window.wl;
  const ACTIONS = { listen: t("Listen"), whisper: t("Whisper"), join: t("Join") };
  const KEYS = { l: "listen", w: "whisper", j: "join" };
  let seen = null;
  phone.value = localStorage.getItem("warmline.help.phone") || "";
  phone.addEventListener("change", () => localStorage.setItem("warmline.help.phone", phone.value.trim()));

  async function act(callRef, action) {
    const body = phone.value.trim() ? { endpoint: phone.value.trim() } : {};
    const resp = await fetch(`/api/supervisor/calls/${encodeURIComponent(callRef)}/${action}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({}));
    alert.textContent = resp.ok ? data.message : ((data.detail && data.detail.message) || resp.statusText);
  }

  function item(r) {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.dataset.call = r.call_ref;
    const params = { agent: r.agent, time: wl.time(r.at) };
    const text = document.createElement("span");
    text.textContent = r.kind === "abusive" ? t("{agent} flagged an abusive call at {time}.", params)
      : t("{agent} asks for help, since {time}.", params);
    li.appendChild(text);
    for (const [action, name] of Object.entries(ACTIONS)) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = name;
      b.setAttribute("aria-label", `${name}: ${r.agent}`);
      b.addEventListener("click", () => act(r.call_ref, action));
      li.appendChild(b);
    }
    li.addEventListener("keydown", (e) => {
      const action = KEYS[e.key.toLowerCase()];
      if (action && !e.altKey && !e.ctrlKey && !e.metaKey) { e.preventDefault(); act(r.call_ref, action); }
    });
    return li;
  }

  async function poll() {
    let data;
    try {
      const resp = await fetch("/api/supervisor/help", { credentials: "same-origin" });
      if (!resp.ok) return;
      data = await resp.json();
    } catch (err) {
      return;
    }
    const ids = data.requests.map((r) => r.id);
    if (seen !== null) {
      const fresh = data.requests.filter((r) => !seen.includes(r.id) && r.kind === "help");
      if (fresh.length) alert.textContent = fresh.map((r) => t("{agent} asks for help.", { agent: r.agent })).join(" ");
    }
    seen = ids;
    list.replaceChildren(...data.requests.map(item));
    resting.replaceChildren(...data.cooldowns.map((c) => {
      const li = document.createElement("li");
      li.textContent = t("{agent} is resting until {time}: please check in.",
        { agent: c.agent, time: wl.time(c.until) });
      return li;
    }));
  }
  poll();
  setInterval(poll, POLL_MS);
})();
