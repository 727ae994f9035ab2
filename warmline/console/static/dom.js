// Small helpers shared by the console's pages (loaded by base.html before page scripts): building
// DOM nodes, and the message catalogue for the page's language.
"use strict";
(function () {
  const source = document.getElementById("wl-catalogue");
  const catalogue = source ? JSON.parse(source.textContent || "{}") : {};
  const lang = document.documentElement.lang || "zh-CN";
  const timeZone = document.body.dataset.timezone || "Asia/Shanghai";

  // The session's CSRF token (core.csrf): every request that changes something carries it. Forms
  // rendered by the server have it already; forms built here get it when submitted, and the
  // scripts' own requests to this origin in an X-CSRF-Token header.
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const SAFE = ["GET", "HEAD", "OPTIONS"];
  const plainFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    const options = Object.assign({}, init);
    const isRequest = input instanceof Request;
    const method = String(options.method || (isRequest ? input.method : "GET")).toUpperCase();
    const url = new URL(isRequest ? input.url : String(input), window.location.href);
    if (csrf && url.origin === window.location.origin && !SAFE.includes(method)) {
      const headers = new Headers(options.headers || (isRequest ? input.headers : undefined));
      headers.set("X-CSRF-Token", csrf);
      options.headers = headers;
    }
    return plainFetch(input, options);
  };
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method !== "post" || !csrf) return;
    if (form.elements.namedItem("csrf_token")) return;
    const field = document.createElement("input");
    field.type = "hidden";
    field.name = "csrf_token";
    field.value = csrf;
    form.append(field);
  }, true);

  // t("Uploading {name}: {pct}%", {name, pct}): the page's language, placeholders filled.
  // Every string a person reads or hears goes through it (make i18n extracts them).
  window.t = function (msgid, params) {
    const text = Object.hasOwn(catalogue, msgid) ? catalogue[msgid] : msgid;
    if (!params) return text;
    return text.replace(/\{([a-z_][a-z0-9_]*)\}/g, (whole, key) =>
      Object.hasOwn(params, key) ? String(params[key]) : whole);
  };

  window.wl = {
    lang: lang,
    // el("td", {scope: "row"}, "text", childNode): attributes skip null/false; true means present.
    el(tag, attrs, ...children) {
      const node = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false) continue;
        node.setAttribute(k, v === true ? "" : String(v));
      }
      for (const child of children) {
        if (child === null || child === undefined) continue;
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
      return node;
    },
    // A time of day on the centre's clock, 24-hour: "14:05" (seconds: "14:05:09").
    time(iso, seconds) {
      if (!iso) return "";
      const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: timeZone };
      if (seconds) options.second = "2-digit";
      return new Date(iso).toLocaleTimeString(lang, options);
    },
    // A date and time on the centre's clock: "2026年11月25日 14:05" / "Nov 25, 2026, 14:05".
    when(iso) {
      if (!iso) return "";
      return new Date(iso).toLocaleString(lang, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZone: timeZone,
      });
    },
    // Whole hours and minutes, as the server says them (core.formats.duration).
    duration(seconds) {
      const total = Math.max(0, Math.floor(seconds));
      const h = Math.floor(total / 3600);
      const m = Math.floor((total % 3600) / 60);
      if (total < 60 && total) return t("{s} s", { s: total });
      if (h && m) return t("{h} h {m} min", { h: h, m: m });
      return h ? t("{h} h", { h: h }) : t("{m} min", { m: m });
    },
    // A masked number, seen as written and heard digit by digit (core.formats.spoken_phone).
    spokenPhone(masked) {
      const parts = [];
      let run = [];
      for (const m of String(masked).matchAll(/(\*+)|([0-9])|(\+)/g)) {
        if (m[2]) { run.push(m[2]); continue; }
        if (run.length) { parts.push(run.join(" ")); run = []; }
        parts.push(m[1] ? t("{n} digits hidden", { n: m[1].length }) : t("plus"));
      }
      if (run.length) parts.push(run.join(" "));
      return parts.join(t(", "));
    },
    phone(masked) {
      const el = window.wl.el;
      return el("span", { class: "phone" }, el("span", { "aria-hidden": "true" }, masked),
        el("span", { class: "visually-hidden" }, window.wl.spokenPhone(masked)));
    },
  };
})();
