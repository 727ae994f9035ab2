// warmline phone: keyboard-only, screen-reader-first. The server sends the whole view over SSE;
// every action is a POST. Announcements go to ARIA live regions and get a short sound cue.
"use strict";
(function () {
  const token = document.querySelector('meta[name="softphone-token"]').content;
  const $ = (id) => document.getElementById(id);
  // The page's words in the phone's language (core/i18n: msgid -> translation), placeholders {name}.
  const CATALOGUE = JSON.parse(($("i18n-catalogue") || {}).textContent || "{}");
  let keys = {};
  let view = null;
  let lastSaid = 0;
  let targetMode = null; // "transfer" | "consult" | null
  // The phone's catalogue (GET /api/i18n): t("English source {name}", {name: …}) in its language.
  let messages = CATALOGUE; // in the page from the start; /api/i18n refreshes it
  let pageWordsLang = "en";
  let awaitList = null; // the callbacks' fetch count when Alt+U was pressed, until the list is in
  function t(msgid, params) {
    let text = messages[msgid] || msgid;
    for (const [key, value] of Object.entries(params || {})) text = text.split("{" + key + "}").join(String(value));
    return text;
  }

  // -------------------------------------------------------------- talking to the phone
  async function post(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Softphone-Token": token },
      body: JSON.stringify(body || {}),
    });
    return resp.json();
  }
  const act = (action, args) => post("/api/action", { action: action, args: args || {} });

  // -------------------------------------------------------------- sound cues (Web Audio)
  const CUES = {
    ring: [[880, 0.12], [0, 0.05], [880, 0.12]], connected: [[660, 0.1], [990, 0.12]],
    ended: [[660, 0.1], [440, 0.15]], held: [[523, 0.2]], resumed: [[523, 0.1], [784, 0.1]],
    error: [[220, 0.25]], registered: [[784, 0.1]], wrapup: [[587, 0.1], [587, 0.1]],
    ready: [[698, 0.1], [880, 0.1]], break: [[440, 0.2]], transfer: [[740, 0.08], [988, 0.08]],
    dialing: [[440, 0.1]], mute: [[330, 0.08]], dtmf: [[1209, 0.05]], info: [[600, 0.06]],
  };
  let audioCtx = null;
  function cue(name) {
    if ($("cues").getAttribute("aria-pressed") !== "true") return;
    try {
      audioCtx = audioCtx || new AudioContext();
      let t = audioCtx.currentTime;
      for (const [freq, dur] of CUES[name] || CUES.info) {
        if (freq) {
          const osc = audioCtx.createOscillator(), gain = audioCtx.createGain();
          osc.frequency.value = freq; gain.gain.value = 0.08;
          osc.connect(gain).connect(audioCtx.destination); osc.start(t); osc.stop(t + dur);
        }
        t += dur;
      }
    } catch (e) { /* no audio output: the live region still speaks */ }
  }

  // -------------------------------------------------------------- announcements
  function say(a) {
    const region = a.politeness === "assertive" ? $("say-assertive") : $("say-polite");
    // Each announcement is a new node in the region, so screen readers say every one of them,
    // even when several arrive together; old ones are pruned.
    const p = document.createElement("p");
    p.textContent = a.text;
    region.append(p);
    while (region.children.length > 6) region.firstElementChild.remove();
    const li = document.createElement("li");
    li.textContent = a.text;
    $("said-log").prepend(li);
    while ($("said-log").children.length > 20) $("said-log").lastChild.remove();
    cue(a.cue);
  }

  // -------------------------------------------------------------- rendering the view
  function mainCall(v) { return v.calls.find((c) => c.role === "main") || null; }
  function render(v) {
    const first = view === null;
    const hadWrapup = view && view.wrapup;
    view = v;
    $("agent-state").textContent = v.agent + ": " + v.state_text;
    $("registration").textContent = t("phone {state}", { state: v.registration });
    const call = mainCall(v);
    const consult = v.calls.find((c) => c.role === "consult");
    let summary = t("No call.");
    if (call) {
      const said = { ringing: t("Ringing: {who}", { who: call.remote }), dialing: t("Calling {who}", { who: call.remote }),
                     connected: t("Talking with {who}", { who: call.remote }), held: t("On hold: {who}", { who: call.remote }),
                     ended: t("Ended: {who}", { who: call.remote }) };
      summary = said[call.status] + (call.muted ? t(" (muted)") : "");
      const status = { ringing: t("ringing"), dialing: t("dialling"), connected: t("connected"), held: t("on hold"), ended: t("ended") };
      if (consult) summary += t("; colleague {who} {status}", { who: consult.remote, status: status[consult.status] || consult.status });
    }
    $("call-summary").textContent = summary;
    const pop = call && call.pop;
    const desk = v.desk;
    $("pop-empty").hidden = !!(pop || desk);
    $("pop-campaign").hidden = !(pop && pop.campaign);
    $("pop-campaign").textContent = pop && pop.campaign ? t("Campaign: {name}", { name: pop.campaign }) : "";
    const dl = $("pop-fields");
    dl.replaceChildren();
    const shown = Object.assign({}, (pop && pop.fields) || {});
    for (const [name, value] of Object.entries((desk && desk.fields) || {})) if (!(name in shown)) shown[name] = value;
    for (const [name, value] of Object.entries(shown)) {
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      dl.append(dt, dd);
    }
    renderScript(pop, desk);
    renderDesk(desk);
    // wrap-up
    $("wrapup").hidden = !v.wrapup;
    if (v.wrapup && !hadWrapup) {
      buildChoices($("dispositions"), "disposition", v.dispositions);
      $("callback-box").hidden = true;
      $("wrapup-form").reset();
      $("dispositions").querySelector("input").focus();
    }
    if (first) buildChoices($("break-reasons"), "reason", numbered(v.break_reasons));
    if (first) buildChoices($("skip-reasons"), "skip_reason", v.placed.skip_reasons);
    renderPlaced(v.placed);
    renderTransfer(v.transfer);
    $("hours").textContent = v.hours || "";
    renderMyDay(v.my_day);
    for (const a of v.announcements) {
      if (a.id > lastSaid) {
        lastSaid = a.id;
        if (!first) say(a);
      }
    }
  }
  // -------------------------------------------------------------- my day (Alt+W)
  function renderMyDay(day) {
    $("my-day").hidden = !day;
    if (!day) return;
    $("day-progress").value = day.progress;
    const dl = $("my-day-facts");
    dl.replaceChildren();
    for (const [name, value] of day.facts) {
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      dl.append(dt, dd);
    }
  }
  // -------------------------------------------------------------- calls I place (preview, callbacks)
  function fact(dl, name, value, lang) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value;
    if (lang) dd.lang = lang;
    dl.append(dt, dd);
  }
  function renderPlaced(desk) {
    const p = desk.preview;
    $("preview-empty").hidden = !!p;
    const dl = $("preview-facts");
    dl.replaceChildren();
    if (p) {
      fact(dl, t("Name"), p.name || "-");
      fact(dl, t("Campaign"), p.campaign);
      fact(dl, t("Number"), p.phone);
      for (const [name, value] of Object.entries(p.fields || {})) fact(dl, name, value);
      if (p.callback_local) fact(dl, t("Callback due"), p.callback_local);
    }
    $("preview-placing").hidden = !desk.placing;
    $("preview-placing").textContent = desk.placing ? t("Calling {who}: your phone rings first.", { who: desk.placing }) : "";
    const list = $("callback-list");
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.contact : null;
    list.replaceChildren();
    for (const c of desk.callbacks) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.contact = String(c.contact_id);
      const when = c.due ? t("due now") : t("due {time}", { time: c.callback_local });
      b.textContent = t("Call {name}", { name: c.name || c.phone }) + " · " + c.phone + " · " + when;
      b.addEventListener("click", () => act("callback_call", { contact_id: String(c.contact_id) }));
      li.append(b);
      list.append(li);
      if (focused === String(c.contact_id)) b.focus();
    }
    $("callbacks-empty").hidden = desk.callbacks.length > 0;
    if (awaitList !== null && desk.listed > awaitList) {
      awaitList = null;
      (list.querySelector("button") || $("preview")).focus();
    }
  }
  // -------------------------------------------------------------- transfers the service carries out
  let chooserShown = false;
  function radio(box, name, value, text, digit) {
    const id = name + "-" + value.replace(/[^A-Za-z0-9_-]/g, "_");
    const wrap = document.createElement("label");
    wrap.htmlFor = id;
    const input = document.createElement("input");
    input.type = "radio"; input.name = name; input.value = value; input.id = id;
    if (digit) input.dataset.digit = digit;
    wrap.append(input, document.createTextNode(" " + text));
    box.append(wrap);
    return input;
  }
  function xferKind() {
    const chosen = $("xfer-form").querySelector('input[name="xfer_kind"]:checked');
    return chosen ? chosen.value : "agent";
  }
  function buildTargets(chooser) {
    const kind = xferKind();
    const box = $("xfer-targets");
    box.replaceChildren();
    $("xfer-whom").hidden = kind === "number";
    $("xfer-number-box").hidden = kind !== "number";
    if (kind === "agent") {
      $("xfer-target-legend").textContent = t("Colleague");
      for (const c of chooser.colleagues || []) {
        const state = c.available ? t("available") : t("not available");
        const input = radio(box, "xfer_target", c.name, c.display_name + " (" + c.name + "), " + state);
        input.disabled = !c.available;
      }
      if (!(chooser.colleagues || []).length) box.append(document.createTextNode(t("No colleagues.")));
    } else if (kind === "queue") {
      $("xfer-target-legend").textContent = t("Queue");
      for (const q of chooser.queues || []) {
        radio(box, "xfer_target", q.skill, t("{skill}: {n} free", { skill: q.skill, n: q.available }));
      }
    }
    const first = box.querySelector("input:not([disabled])");
    if (first) first.checked = true;
  }
  function renderTransfer(x) {
    const chooser = x && x.chooser;
    if (chooser && !chooserShown) {
      chooserShown = true;
      $("xfer-kinds").replaceChildren();
      for (const [digit, [code, label]] of Object.entries(x.kinds)) {
        radio($("xfer-kinds"), "xfer_kind", code, digit + " " + label, digit);
      }
      $("xfer-modes").replaceChildren();
      for (const [code, label] of Object.entries(x.modes)) radio($("xfer-modes"), "xfer_mode", code, label);
      $("xfer-kinds").querySelector("input").checked = true;
      $("xfer-modes").querySelector('input[value="' + chooser.mode + '"]').checked = true;
      buildTargets(chooser);
      $("xfer-form").hidden = false;
      $("xfer-kinds").querySelector("input").focus();
    } else if (!chooser && chooserShown) {
      chooserShown = false;
      $("xfer-form").hidden = true;
    }
    const current = x && x.current;
    const live = current && ["requested", "ringing", "consulting"].includes(current.state);
    $("xfer-state").hidden = !live;
    $("xfer-state").textContent = live
      ? current.message + (current.state === "consulting" ? " " + t("Alt+J joins, Escape goes back.") : "")
      : "";
  }
  $("xfer-kinds").addEventListener("change", () => { if (view && view.transfer.chooser) buildTargets(view.transfer.chooser); });
  $("xfer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const kind = xferKind();
    const mode = ($("xfer-form").querySelector('input[name="xfer_mode"]:checked') || {}).value || "attended";
    const chosen = $("xfer-form").querySelector('input[name="xfer_target"]:checked');
    const target = kind === "number" ? $("xfer-number").value.trim() : (chosen ? chosen.value : "");
    if (!target) {
      say({ text: t("Choose whom to transfer the call to."), politeness: "assertive", cue: "error" });
      return;
    }
    $("xfer-form").hidden = true; chooserShown = false;
    $("call").focus();
    act("transfer_choose", { kind: kind, target: target, mode: mode });
  });
  function localise() {
    const words = {
      "preview-h": t("Calls I place"),
      "preview-empty": t("No contact shown. Press Alt+N for the next one."),
      "skip-legend": t("Why skip this contact (keys 1 to 4, then Enter)"),
      "skip-note-label": t("Note (optional)"),
      "skip-submit": t("Skip"),
      "callbacks-h": t("My callbacks"),
      "callbacks-empty": t("Press Alt+U to hear and list your callbacks."),
    };
    Object.assign(words, {
      "xfer-kind-legend": t("Transfer to (keys 1 to 3)"),
      "xfer-mode-legend": t("How"),
      "xfer-target-legend": t("Whom"),
      "xfer-number-label": t("Number or name from the campaign's list"),
      "xfer-submit": t("Transfer"),
    });
    for (const [id, text] of Object.entries(words)) $(id).textContent = text;
    const buttons = {
      "preview-next": [t("Next contact"), "Alt+N"], "preview-call": [t("Call"), "F9"],
      "preview-skip": [t("Skip"), "Alt+X"], "callbacks-open": [t("My callbacks"), "Alt+U"],
    };
    for (const [id, [label, key]] of Object.entries(buttons)) {
      const kbd = document.createElement("kbd"); kbd.textContent = key;
      $(id).replaceChildren(document.createTextNode(label + " "), kbd);
    }
    $("preview-actions").setAttribute("aria-label", t("Preview actions"));
    if (pageWordsLang !== document.documentElement.lang) {
      $("preview").lang = pageWordsLang;
      $("xfer-form").lang = pageWordsLang;
      $("xfer-state").lang = pageWordsLang;
    }
  }
  // -------------------------------------------------------------- the call's script and form
  let scriptShown = null; // the HTML last put in the page: replaced only when it changes
  let formFor = null; // the call (and load) the form was built for
  let errorsShown = "{}";
  function renderScript(pop, desk) {
    const html = desk && desk.script_html;
    if (html) {
      // already checked twice: rendered safe by the server, cleaned again by the phone
      if (html !== scriptShown) { scriptShown = html; $("pop-script").innerHTML = html; }
    } else {
      scriptShown = null;
      $("pop-script").textContent = (pop && pop.script) || "";
    }
    const missing = (desk && desk.missing) || [];
    $("pop-missing").hidden = !missing.length;
    $("pop-missing").textContent = missing.length ? t("Not in the contact's list: {fields}", { fields: missing.join(", ") }) : "";
  }
  function renderDesk(desk) {
    const form = desk && desk.form;
    $("desk-form").hidden = !form;
    const key = form ? desk.call_ref + (desk.loaded ? "+" : "-") : null;
    if (key !== formFor) {
      formFor = key;
      errorsShown = "{}";
      if (form) buildForm(form, desk.answers || {});
      else $("form-questions").replaceChildren();
    }
    if (!form) return;
    const errors = JSON.stringify(desk.errors || {});
    if (errors !== errorsShown) { errorsShown = errors; showErrors(desk.errors || {}); }
    $("form-state").textContent = desk.saved
      ? (desk.case_id ? t("Saved as case {id}.", { id: desk.case_id }) : t("Saved."))
      : t("Not saved yet.");
  }
  function hintOf(q) {
    const parts = [];
    if (q.hint) parts.push(q.hint);
    if (q.type === "number") {
      if (q.min !== undefined && q.max !== undefined) parts.push(t("A number from {min} to {max}.", { min: q.min, max: q.max }));
      else parts.push(t("A number."));
      if (q.integer) parts.push(t("Whole numbers only."));
    } else if (q.type === "date") parts.push(t("A date, written 2026-12-31."));
    else if (q.type === "text") parts.push(t("At most {n} characters.", { n: q.max_length }));
    return parts.join(" ");
  }
  function buildForm(form, answers) {
    $("form-h").textContent = form.title ? t("Form: {title}", { title: form.title }) : t("Form");
    const box = $("form-questions");
    box.replaceChildren();
    for (const q of form.questions) box.append(questionBox(q, answers[q.key]));
    applyConditions();
  }
  function questionBox(q, value) {
    const id = "q-" + q.key;
    const wrap = document.createElement("div");
    wrap.className = "question"; wrap.id = id + "-box"; wrap.dataset.key = q.key; wrap.dataset.type = q.type;
    if (q.show_if) wrap.dataset.showIf = JSON.stringify(q.show_if);
    const label = q.label + (q.required ? " " + t("(required)") : "");
    const hint = document.createElement("p");
    hint.id = id + "-hint"; hint.className = "hint"; hint.textContent = hintOf(q);
    const error = document.createElement("p");
    error.id = id + "-error"; error.className = "error"; error.hidden = true;
    let inputs;
    if (q.type === "choice") {
      const group = document.createElement("fieldset");
      group.id = id;
      const legend = document.createElement("legend");
      legend.textContent = label;
      group.append(legend);
      inputs = q.choices.map((c, i) => {
        const input = document.createElement("input");
        input.type = "radio"; input.name = "q-" + q.key; input.value = c.value; input.id = id + "-" + (i + 1);
        input.checked = value !== undefined && String(value) === c.value;
        const choice = document.createElement("label");
        choice.htmlFor = input.id;
        choice.append(input, document.createTextNode(" " + c.label));
        group.append(choice);
        return input;
      });
      group.append(hint, error);
      wrap.append(group);
    } else {
      const caption = document.createElement("label");
      caption.htmlFor = id; caption.textContent = label;
      let input;
      if (q.type === "text" && q.max_length > 120) {
        input = document.createElement("textarea"); input.rows = 3;
      } else {
        input = document.createElement("input");
        input.type = q.type === "date" ? "date" : "text";
      }
      if (q.type === "number") input.inputMode = "decimal";
      if (q.type === "text") input.maxLength = q.max_length;
      if (q.type === "date" && q.min) input.min = q.min;
      if (q.type === "date" && q.max) input.max = q.max;
      input.id = id; input.name = "q-" + q.key; input.autocomplete = "off";
      if (value !== undefined && value !== null) input.value = String(value);
      inputs = [input];
      wrap.append(caption, input, hint, error);
    }
    for (const input of inputs) {
      input.dataset.question = q.key;
      if (q.required && q.type !== "choice") input.setAttribute("aria-required", "true");
      input.setAttribute("aria-describedby", hint.textContent ? hint.id : "");
      if (!hint.textContent) input.removeAttribute("aria-describedby");
    }
    if (q.required && q.type === "choice") for (const input of inputs) input.required = true; // said as required
    return wrap;
  }
  function valueOf(box) {
    if (box.dataset.type === "choice") {
      const checked = box.querySelector("input:checked");
      return checked ? checked.value : "";
    }
    return box.querySelector("input, textarea").value.trim();
  }
  function applyConditions() {
    // In order: a question is shown when every earlier question it names has the wanted answer.
    const values = {};
    for (const box of $("form-questions").children) {
      let show = true;
      const cond = box.dataset.showIf ? JSON.parse(box.dataset.showIf) : {};
      for (const [key, wanted] of Object.entries(cond)) {
        const given = values[key] === undefined ? "" : values[key];
        if (!(Array.isArray(wanted) ? wanted : [wanted]).includes(given)) show = false;
      }
      box.hidden = !show;
      if (show) values[box.dataset.key] = valueOf(box);
    }
  }
  function formAnswers() {
    const answers = {};
    if ($("desk-form").hidden) return answers;
    for (const box of $("form-questions").children) {
      if (box.hidden) continue;
      const value = valueOf(box);
      if (value !== "") answers[box.dataset.key] = value;
    }
    return answers;
  }
  function showErrors(errors) {
    let first = null;
    for (const box of $("form-questions").children) {
      const key = box.dataset.key;
      const error = $("q-" + key + "-error");
      const hint = $("q-" + key + "-hint");
      const message = errors[key];
      error.textContent = message || "";
      error.hidden = !message;
      for (const input of box.querySelectorAll("input, textarea")) {
        const ids = [hint.textContent ? hint.id : "", message ? error.id : ""].filter(Boolean).join(" ");
        if (ids) input.setAttribute("aria-describedby", ids); else input.removeAttribute("aria-describedby");
        if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
        if (message && !first && !box.hidden) first = input;
      }
    }
    if (first) first.focus(); // the phone has said what is wrong (assertive); the field is where to fix it
  }
  function focusForm() {
    if ($("desk-form").hidden) { say({ text: t("This call has no form."), politeness: "assertive", cue: "error" }); return; }
    const box = Array.from($("form-questions").children).find((b) => !b.hidden);
    const input = box && (box.querySelector("input:checked") || box.querySelector("input, textarea"));
    if (input) input.focus();
  }
  function inCallForm(el) { return !!el && !!el.closest && !!el.closest("#call-form"); }
  $("form-h").textContent = t("Form");
  $("form-save").firstChild.textContent = t("Save form") + " ";
  $("call-form").addEventListener("change", applyConditions);
  $("call-form").addEventListener("input", applyConditions);
  $("call-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act("form", { answers: formAnswers() });
  });

  function numbered(map) {
    const out = {}; let i = 1;
    for (const [code, label] of Object.entries(map)) out[String(i++)] = [code, label];
    return out;
  }
  // map: digit -> label, or digit -> [value, label, action, Chinese label]
  function buildChoices(box, name, map) {
    box.replaceChildren();
    for (const [digit, entry] of Object.entries(map)) {
      const [value, label, action, labelZh] = Array.isArray(entry) ? entry : [digit, entry];
      const id = name + "-" + digit;
      const wrap = document.createElement("label");
      wrap.htmlFor = id;
      const input = document.createElement("input");
      input.type = "radio"; input.name = name; input.value = value; input.id = id; input.dataset.digit = digit;
      if (action) input.dataset.action = action;
      wrap.append(input, document.createTextNode(digit + " " + label));
      if (labelZh && labelZh !== label) {
        // the campaign's own (Chinese) label, marked so a screen reader reads it with a Chinese voice
        const zh = document.createElement("span");
        zh.lang = "zh-CN"; zh.textContent = " " + labelZh;
        wrap.append(zh);
      }
      box.append(wrap);
    }
  }
  function choose(box, digit) {
    const input = box.querySelector('input[data-digit="' + digit + '"]');
    if (!input) return false;
    input.checked = true; input.focus();
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  // -------------------------------------------------------------- forms
  function openTarget(mode) {
    targetMode = mode;
    $("target-label").textContent = mode === "consult" ? t("Consult colleague") : t("Transfer to");
    $("target-form").hidden = false;
    $("target").value = "";
    $("target").focus();
  }
  function closeForms() {
    targetMode = null;
    $("target-form").hidden = true;
    $("break-form").hidden = true;
    $("skip-form").hidden = true;
  }
  $("skip-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const chosen = $("skip-form").querySelector("input:checked");
    if (!chosen) { say({ text: t("Choose a reason with keys 1 to {n}.", { n: 4 }), politeness: "assertive", cue: "error" }); return; }
    const args = { reason: chosen.value };
    if ($("skip-note").value.trim()) args.note = $("skip-note").value.trim();
    closeForms();
    $("skip-form").reset();
    act("preview_skip", args).then(() => $("preview").focus());
  });
  $("target-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const mode = targetMode; const target = $("target").value.trim();
    closeForms();
    $("call").focus();
    if (mode && target) act(mode, { target: target });
  });
  $("break-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const chosen = $("break-form").querySelector("input:checked");
    if (!chosen) { say({ text: t("Choose a reason with keys 1 to 6."), politeness: "assertive", cue: "error" }); return; }
    closeForms();
    act("break", { reason: chosen.value });
  });
  function isCallback(input) { return !!input && input.dataset.action === "callback"; }
  $("dispositions").addEventListener("change", () => {
    const chosen = $("wrapup-form").querySelector('input[name="disposition"]:checked');
    $("callback-box").hidden = !isCallback(chosen);
  });
  $("wrapup-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const chosen = $("wrapup-form").querySelector('input[name="disposition"]:checked');
    const count = $("dispositions").querySelectorAll("input").length;
    if (!chosen) { say({ text: t("Choose the result with keys 1 to {n}.", { n: count }), politeness: "assertive", cue: "error" }); return; }
    const args = { disposition: chosen.value };
    if (isCallback(chosen)) args.callback_at = $("callback-at").value;
    if ($("note").value.trim()) args.note = $("note").value.trim();
    const answers = formAnswers();
    if (Object.keys(answers).length) args.answers = answers;
    act("wrapup", args).then((r) => { if (r.ok) $("call").focus(); });
  });
  $("dtmf-form").addEventListener("submit", (e) => { e.preventDefault(); });
  $("dtmf").addEventListener("input", () => {
    const digits = $("dtmf").value.replace(/[^0-9*#]/g, "");
    $("dtmf").value = "";
    if (digits) act("dtmf", { digits: digits });
  });
  function toggle(id, cls) {
    const on = !document.documentElement.classList.contains(cls);
    document.documentElement.classList.toggle(cls, on);
    $(id).setAttribute("aria-pressed", String(on));
    localStorage.setItem("wl-" + cls, on ? "1" : "");
    const said = id === "large-text" ? (on ? t("Large text on.") : t("Large text off.")) : (on ? t("High contrast on.") : t("High contrast off."));
    say({ text: said, politeness: "polite", cue: "info" });
  }
  for (const cls of ["large", "contrast"]) {
    if (localStorage.getItem("wl-" + cls)) {
      document.documentElement.classList.add(cls);
      $(cls === "large" ? "large-text" : "contrast").setAttribute("aria-pressed", "true");
    }
  }
  $("large-text").addEventListener("click", () => toggle("large-text", "large"));
  $("contrast").addEventListener("click", () => toggle("contrast", "contrast"));
  $("cues").addEventListener("click", () => {
    const on = $("cues").getAttribute("aria-pressed") !== "true";
    $("cues").setAttribute("aria-pressed", String(on));
  });
  document.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));
  document.querySelectorAll("[data-open]").forEach((b) => b.addEventListener("click", () => run(b.dataset.open)));
  document.querySelectorAll("[data-audio]").forEach((b) => b.addEventListener("click", () => post("/api/audio/" + b.dataset.audio)));

  // -------------------------------------------------------------- keys
  function run(action) {
    switch (action) {
      case "transfer": case "consult":
        // The service's call: its chooser (colleague, queue, number); any other call: type a target.
        if (view && view.transfer && view.transfer.server) act("transfer_open", { mode: action === "consult" ? "attended" : "blind" });
        else openTarget(action);
        break;
      case "break": $("break-form").hidden = false; $("break-reasons").querySelector("input").focus(); break;
      case "preview_skip":
        if (!view || !view.placed.preview) { act("preview_skip", { reason: "" }); break; }
        $("skip-form").hidden = false; $("skip-reasons").querySelector("input").focus(); break;
      case "preview": act("preview").then(() => $("preview").focus()); break;
      case "callbacks":
        // Focus the list once the view that carries the freshly fetched callbacks has arrived.
        awaitList = view ? view.placed.listed : 0;
        act("callbacks").then((r) => { if (!r.ok) awaitList = null; });
        break;
      case "large_text": toggle("large-text", "large"); break;
      case "contrast": toggle("contrast", "contrast"); break;
      case "script": $("pop").focus(); break;
      case "form": focusForm(); break;
      case "save_form": $("call-form").requestSubmit(); break;
      case "help": $("help").focus(); break;
      default: act(action);
    }
  }
  function keyName(e) {
    let k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (k === "/") k = "slash";
    return (e.ctrlKey ? "Ctrl+" : "") + (e.altKey ? "Alt+" : "") + k;
  }
  function inText(el) {
    return el && ((el.tagName === "INPUT" && !["radio", "checkbox", "button"].includes(el.type)) || el.tagName === "TEXTAREA");
  }
  document.addEventListener("keydown", (e) => {
    const name = keyName(e);
    if (name === "Escape") {
      e.preventDefault();
      const open = !$("target-form").hidden || !$("break-form").hidden || !$("skip-form").hidden;
      const chooser = !$("xfer-form").hidden;
      closeForms();
      $("xfer-form").hidden = true; chooserShown = false;
      $("call").focus();
      // nothing open: Escape ends a consultation and goes back to the caller (or closes the chooser)
      if (!open || chooser) act("cancel");
      return;
    }
    const el = document.activeElement;
    if (name === "Enter" && el && el.type === "radio" && el.form) { e.preventDefault(); el.form.requestSubmit(); return; }
    const action = keys[name];
    if (action) { e.preventDefault(); run(action); return; }
    if (e.altKey || e.ctrlKey || e.metaKey || inText(document.activeElement)) return;
    if (inCallForm(document.activeElement)) return; // digits there answer the form, not the call
    if (!$("break-form").hidden && /^[1-6]$/.test(e.key)) {
      e.preventDefault(); choose($("break-reasons"), e.key); return;
    }
    if (!$("xfer-form").hidden && /^[1-3]$/.test(e.key)) {
      e.preventDefault(); choose($("xfer-kinds"), e.key); return;
    }
    if (!$("skip-form").hidden && /^[1-4]$/.test(e.key)) {
      e.preventDefault(); choose($("skip-reasons"), e.key); return;
    }
    if (view && view.wrapup && /^[1-9]$/.test(e.key)) {
      e.preventDefault(); choose($("dispositions"), e.key); return;
    }
    if (view && /^[0-9*#]$/.test(e.key)) {
      const call = mainCall(view);
      if (call && call.status === "connected") { e.preventDefault(); act("dtmf", { digits: e.key }); }
    }
  });

  // -------------------------------------------------------------- start
  // The page is ready once the key map is loaded and the first view has arrived (so the live
  // link to the phone is open): only then do shortcuts work. Until then <html> has no
  // data-ready; once ready it has data-ready="true" and the polite region says so, so a person
  // (and a test) knows keys pressed from now on are acted on.
  let keysLoaded = false;
  let wordsLoaded = false;
  function markReady() {
    if (!keysLoaded || !wordsLoaded || view === null || document.documentElement.dataset.ready === "true") return;
    document.documentElement.dataset.ready = "true";
    say({ text: t("Phone page ready. F1 lists the keys."), politeness: "polite", cue: "info" });
  }
  function loadKeys(delay) {
    fetch("/api/keys", { headers: { "X-Softphone-Token": token } })
      .then((r) => { if (!r.ok) throw new Error("keys: " + r.status); return r.json(); })
      .then((k) => { keys = k; keysLoaded = true; markReady(); })
      .catch(() => { window.setTimeout(() => loadKeys(Math.min(delay * 2, 5000)), delay); });
  }
  loadKeys(250);
  // The desk speaks through the screen reader only while this page does not have the focus.
  function tellFocus() {
    fetch("/api/page-focus", { method: "POST", keepalive: true,
      headers: { "Content-Type": "application/json", "X-Softphone-Token": token },
      body: JSON.stringify({ focused: document.hasFocus() && !document.hidden }) }).catch(() => {});
  }
  ["focus", "blur", "pagehide"].forEach((e) => window.addEventListener(e, tellFocus));
  document.addEventListener("visibilitychange", tellFocus);
  tellFocus();
  function loadWords(delay) {
    fetch("/api/i18n", { headers: { "X-Softphone-Token": token } })
      .then((r) => { if (!r.ok) throw new Error("i18n: " + r.status); return r.json(); })
      .then((c) => {
        messages = c.messages || {}; pageWordsLang = c.lang || "en"; wordsLoaded = true;
        localise();
        if (view) renderPlaced(view.placed);
        markReady();
      })
      .catch(() => { window.setTimeout(() => loadWords(Math.min(delay * 2, 5000)), delay); });
  }
  loadWords(250);
  const events = new EventSource("/events?t=" + encodeURIComponent(token));
  events.onmessage = (m) => { render(JSON.parse(m.data)); markReady(); };
  events.onerror = () => { $("registration").textContent = t("phone page lost its link to the phone; retrying"); };
})();
