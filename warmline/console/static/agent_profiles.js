// Agents page: send the profile form to the profile API, update the agent's row in place and say
// the result in the page's live status region. An error goes to the alert beside the form; the
// field it names is marked invalid and focused. Without this script the form posts to the console
// and the page comes back saying what was saved.
"use strict";

(function () {
  const form = document.getElementById("profile-form");
  if (!form) return;
  const agent = form.dataset.agent;
  const status = document.getElementById("status");
  const errorBox = document.getElementById("profile-error");
  const el = window.wl.el;
  // Arriving from an Edit link: the form's heading has focus, so Tab goes on to its first field
  // and a screen reader says whose profile this is.
  if (window.location.hash === "#edit") document.getElementById("edit").focus();
  const FIELDS = {
    skills: t("Skills"),
    lines: t("Lines"),
    languages: t("Languages"),
    daily_hours: t("Daily target hours"),
    daily_target_minutes: t("Daily target hours"),
    level: t("Level"),
  };
  const LEVELS = { trainee: t("trainee"), supervised: t("supervised"), agent: t("agent") };
  const english = document.documentElement.lang === "en";

  function split(text) {
    return text.split(/[,，、;；]/).map((s) => s.trim()).filter(Boolean);
  }

  function value(id) {
    return document.getElementById(id).value;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
    for (const input of form.querySelectorAll("input, select")) {
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", input.id + "-help");
    }
  }

  function showError(field, message) {
    const name = FIELDS[field] || t("Profile");
    status.replaceChildren();
    errorBox.textContent = t("{field}: {problem}. Nothing was saved.",
      { field: name, problem: String(message).replace(/[.。]$/, "") });
    errorBox.hidden = false;
    const id = field === "daily_target_minutes" ? "daily_hours" : field;
    const input = id ? document.getElementById(id) : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", input.id + "-help profile-error");
      input.focus();
    }
  }

  // Codes typed in English, marked so a screen reader reads them in an English voice.
  function codes(cell, values, empty) {
    if (!values.length) {
      cell.textContent = empty;
      return;
    }
    const nodes = [];
    values.forEach((v, i) => {
      if (i) nodes.push(t(", "));
      nodes.push(el("code", { lang: english ? null : "en" }, v));
    });
    cell.replaceChildren(...nodes);
  }

  function updateRow(p) {
    const row = document.getElementById("agent-" + p.name);
    if (!row) return;
    const cell = (field) => row.querySelector('[data-field="' + field + '"]');
    codes(cell("skills"), p.skills, "—");
    codes(cell("lines"), p.lines, t("all"));
    codes(cell("languages"), p.languages, "—");
    cell("daily_hours").textContent = window.wl.duration(p.daily_target_minutes * 60);
    cell("level").textContent = LEVELS[p.level] || p.level;
  }

  // The same sentence as the server's (agents.profiles.Profile.text).
  function saved(p) {
    let who = p.display_name ? p.name + " (" + p.display_name + ")" : p.name;
    if (p.disabled) who = t("{who}, disabled", { who: who });
    const profile = t("{who}: skills {skills}; lines {lines}; languages {languages}; {hours} a day", {
      who: who,
      skills: p.skills.join(t(", ")) || t("none"),
      lines: p.lines.join(t(", ")) || t("all"),
      languages: p.languages.join(t(", ")) || t("none"),
      hours: window.wl.duration(p.daily_target_minutes * 60),
    }) + (p.level === "agent" ? "" : t("; level: {level}", { level: LEVELS[p.level] || p.level })) +
      (p.manual_dial ? t("; may dial typed numbers") : "");
    status.textContent = t("Saved. {profile}.", { profile: profile });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const hoursInput = value("daily_hours").trim();
    const hours = Number(hoursInput);
    if (hoursInput === "" || !Number.isFinite(hours)) {
      showError("daily_hours", t("'{text}' is not a number of hours (e.g. 4 or 3.5)", { text: hoursInput }));
      return;
    }
    const body = {
      skills: split(value("skills")),
      lines: split(value("lines")),
      languages: split(value("languages")),
      daily_hours: hours,
      level: value("level"),
    };
    let resp;
    try {
      resp = await fetch("/api/agents/" + encodeURIComponent(agent) + "/profile", {
        method: "PATCH",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      showError(null, t("the server could not be reached"));
      return;
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (err) {
      data = null;
    }
    if (!resp.ok) {
      const d = data && data.detail;
      if (Array.isArray(d) && d.length) {
        const field = (d[0].loc || []).find((part) => Object.hasOwn(FIELDS, part));
        showError(field || null, d[0].msg);
      } else if (d && typeof d.message === "string") {
        showError(null, d.message);
      } else {
        showError(null, typeof d === "string" ? d : "HTTP " + resp.status);
      }
      return;
    }
    updateRow(data);
    saved(data);
  });
})();
