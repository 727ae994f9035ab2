// Agents page: send the profile form to the profile API, update the agent's row in place and say
// the result in the page's live status region (Chinese first, English kept). An error goes to the
// alert beside the form; the field it names is marked invalid and focused. Without this script
// the form posts to the console and the page comes back saying what was saved.
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
    skills: ["技能", "Skills"],
    lines: ["服务线路", "Lines"],
    languages: ["语言", "Languages"],
    daily_hours: ["每日目标小时数", "Daily target hours"],
    daily_target_minutes: ["每日目标小时数", "Daily target hours"],
  };

  function split(text) {
    return text.split(/[,，、;；]/).map((s) => s.trim()).filter(Boolean);
  }

  function value(id) {
    return document.getElementById(id).value;
  }

  function say(zh, en) {
    status.replaceChildren(el("span", { lang: "zh-CN" }, zh), " " + en);
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
    for (const input of form.querySelectorAll("input")) {
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", input.id + "-help");
    }
  }

  function showError(field, message) {
    const names = FIELDS[field] || ["资料", "Profile"];
    status.replaceChildren();
    errorBox.replaceChildren(
      el("span", { lang: "zh-CN" }, names[0] + "有误，未保存。"),
      " " + names[1] + ": " + message + ". Nothing was saved."
    );
    errorBox.hidden = false;
    const id = field === "daily_target_minutes" ? "daily_hours" : field;
    const input = id ? document.getElementById(id) : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", input.id + "-help profile-error");
      input.focus();
    }
  }

  function hoursText(minutes) {
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    if (!m) return h + " h";
    return h ? h + " h " + m + " min" : m + " min";
  }

  function updateRow(p) {
    const row = document.getElementById("agent-" + p.name);
    if (!row) return;
    const cell = (field) => row.querySelector('[data-field="' + field + '"]');
    cell("skills").textContent = p.skills.length ? p.skills.join(", ") : "—";
    if (p.lines.length) cell("lines").textContent = p.lines.join(", ");
    else cell("lines").replaceChildren(el("span", { lang: "zh-CN" }, "全部"), " all");
    cell("languages").textContent = p.languages.length ? p.languages.join(", ") : "—";
    cell("daily_hours").replaceChildren(String(p.daily_hours) + " ", el("span", { lang: "zh-CN" }, "小时"), " h");
  }

  function saved(p) {
    const zh =
      "已保存 " + p.name + " 的资料：技能 " + (p.skills.join("、") || "无") +
      "；线路 " + (p.lines.join("、") || "全部") +
      "；语言 " + (p.languages.join("、") || "未填") +
      "；每日 " + p.daily_hours + " 小时。";
    const who = p.display_name ? p.name + " (" + p.display_name + ")" : p.name;
    const en =
      "Saved. " + who + (p.disabled ? ", disabled" : "") +
      ": skills " + (p.skills.join(", ") || "none") +
      "; lines " + (p.lines.join(", ") || "all") +
      "; languages " + (p.languages.join(", ") || "none") +
      "; " + hoursText(p.daily_target_minutes) + " a day.";
    say(zh, en);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const hoursInput = value("daily_hours").trim();
    const hours = Number(hoursInput);
    if (hoursInput === "" || !Number.isFinite(hours)) {
      showError("daily_hours", "'" + hoursInput + "' is not a number of hours (e.g. 4 or 3.5)");
      return;
    }
    const body = {
      skills: split(value("skills")),
      lines: split(value("lines")),
      languages: split(value("languages")),
      daily_hours: hours,
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
      showError(null, "the server could not be reached");
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
      } else {
        showError(null, typeof d === "string" ? d : "HTTP " + resp.status);
      }
      return;
    }
    updateRow(data);
    saved(data);
  });
})();
