// Campaign page: list preview with column mapping, upload with progress, the import report.
// Without this script the import form still works (a plain multipart POST and a report page).
// Everything is announced through the page's live status region; nothing needs a mouse.
"use strict";

(function () {
  const form = document.getElementById("import-form");
  if (!form) return;
  const campaign = form.dataset.campaign;
  const base = "/api/campaigns/" + encodeURIComponent(campaign);
  const status = document.getElementById("status");
  const errorBox = document.getElementById("import-error");
  const fileInput = document.getElementById("list-file");
  const mappingInput = document.getElementById("mapping");
  const headerRow = document.getElementById("header-row");
  const sheetInput = document.getElementById("sheet");
  const previewButton = document.getElementById("preview-button");
  const importButton = document.getElementById("import-button");
  const progressLine = document.getElementById("progress-line");
  const progress = document.getElementById("upload-progress");
  const preview = document.getElementById("preview");
  const previewBody = document.getElementById("preview-body");
  const report = document.getElementById("report");
  const reportBody = document.getElementById("report-body");
  const reportHeading = document.getElementById("report-heading");

  previewButton.hidden = false;

  function say(text) {
    status.textContent = text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    say(t("Error: {message}", { message: text }));
  }

  function clearError() {
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  const el = window.wl.el;

  function detail(body, fallback) {
    if (!body) return fallback;
    const d = body.detail;
    if (typeof d === "string") return d;
    if (d && typeof d.message === "string") return d.message;
    if (Array.isArray(d)) return d.map((e) => (e.loc || []).join(".") + ": " + e.msg).join("; ");
    return fallback;
  }

  function needFile() {
    if (fileInput.files && fileInput.files.length) return true;
    showError(t("Choose a list file first."));
    fileInput.focus();
    return false;
  }

  // --- preview ------------------------------------------------------------------------------

  function columnSelect(id, label, columns, chosen, optional) {
    const select = el("select", { id: id });
    if (optional) select.append(el("option", { value: "" }, t("(none)")));
    for (const c of columns) {
      const text = c.letter + (c.header ? ": " + c.header : "");
      select.append(el("option", { value: c.letter, selected: c.letter === chosen }, text));
    }
    select.addEventListener("change", updateMapping);
    return el("p", {}, el("label", { for: id }, label), select);
  }

  function letterOf(columns, field) {
    const c = columns.find((col) => col.field === field);
    return c ? c.letter : "";
  }

  function updateMapping() {
    const parts = [];
    for (const [field, id] of [["phone", "map-phone"], ["name", "map-name"], ["timezone", "map-timezone"]]) {
      const select = document.getElementById(id);
      if (select && select.value) parts.push(field + "=" + select.value);
    }
    mappingInput.value = parts.join(",");
  }

  function renderPreview(p) {
    previewBody.replaceChildren();
    const separator = p.delimiter === "\t" ? t("tabs") : "'" + p.delimiter + "'";
    const where = p.format === "csv"
      ? t("CSV text, {encoding}, separated by {separator}", { encoding: p.encoding, separator: separator })
      : t("Excel workbook, sheet {sheet}", { sheet: p.sheet });
    previewBody.append(el("p", {}, p.header_row
      ? t("{file}: {where}. Header in row {row}.", { file: p.file, where: where, row: p.header_row })
      : t("{file}: {where}. Header not found: no header row.", { file: p.file, where: where })));
    if (p.other_sheets && p.other_sheets.length) {
      previewBody.append(el("p", { class: "warning" },
        t("The workbook has other sheets ({sheets}); only {sheet} is imported.",
          { sheets: p.other_sheets.join(t(", ")), sheet: p.sheet })));
    }
    const fieldset = el("fieldset", {}, el("legend", {}, t("Which column holds what")));
    fieldset.append(
      columnSelect("map-phone", t("Phone number column"), p.columns, letterOf(p.columns, "phone"), false),
      columnSelect("map-name", t("Name column"), p.columns, letterOf(p.columns, "name"), true),
      columnSelect("map-timezone", t("Time-zone column"), p.columns, letterOf(p.columns, "timezone"), true),
    );
    previewBody.append(fieldset);
    const head = el("tr", {}, el("th", { scope: "col" }, t("Row")));
    for (const c of p.columns) head.append(el("th", { scope: "col" }, c.letter + (c.header ? " " + c.header : "")));
    head.append(el("th", { scope: "col" }, t("Number read as")));
    const body = el("tbody");
    for (const r of p.rows) {
      const tr = el("tr", {}, el("th", { scope: "row" }, r.row));
      for (const cell of r.cells) tr.append(el("td", {}, cell));
      tr.append(el("td", {}, r.phone ? window.wl.phone(r.phone) : r.reason + ": " + r.detail));
      body.append(tr);
    }
    previewBody.append(el("table", {},
      el("caption", {}, t("First {n} rows (numbers masked)", { n: p.rows.length })), el("thead", {}, head), body));
    headerRow.value = p.header_row ? String(p.header_row) : "0";
    sheetInput.value = p.sheet || "";
    updateMapping();
    preview.hidden = false;
  }

  previewButton.addEventListener("click", async () => {
    clearError();
    if (!needFile()) return;
    const data = new FormData();
    data.append("file", fileInput.files[0]);
    if (mappingInput.value.trim()) data.append("mapping", mappingInput.value.trim());
    say(t("Reading the first rows of {file}…", { file: fileInput.files[0].name }));
    previewButton.disabled = true;
    try {
      const resp = await fetch(base + "/lists/preview", { method: "POST", body: data, credentials: "same-origin" });
      const body = await resp.json().catch(() => null);
      if (!resp.ok) {
        showError(detail(body, t("Preview failed ({status}).", { status: resp.status })));
        return;
      }
      renderPreview(body);
      const phone = body.columns.find((c) => c.field === "phone");
      const column = phone ? phone.letter : "?";
      say(body.header_row
        ? t("Preview ready: header in row {row}, phone numbers in column {column}. Check the columns, then Import.",
          { row: body.header_row, column: column })
        : t("Preview ready: header not found, phone numbers in column {column}. Check the columns, then Import.",
          { column: column }));
      preview.focus();
    } catch (err) {
      showError(t("Preview failed: {error}", { error: err }));
    } finally {
      previewButton.disabled = false;
    }
  });

  fileInput.addEventListener("change", () => {
    // A new file: an earlier preview and mapping no longer apply.
    preview.hidden = true;
    previewBody.replaceChildren();
    mappingInput.value = "";
    headerRow.value = "";
    sheetInput.value = "";
    clearError();
    if (fileInput.files.length) say(t("Chosen: {file}. Preview it or import it.", { file: fileInput.files[0].name }));
  });

  // --- import -------------------------------------------------------------------------------

  function renderReport(r) {
    reportBody.replaceChildren();
    const facts = el("dl", { class: "facts" });
    for (const [label, value] of [[t("Rows"), r.rows], [t("Accepted"), r.accepted], [t("Rejected"), r.rejected],
      [t("Skipped (blank)"), r.skipped]]) {
      facts.append(el("dt", {}, label), el("dd", {}, value));
    }
    reportBody.append(facts);
    if (r.already_imported && r.accepted === 0) {
      reportBody.append(el("p", { class: "warning" },
        t("This file was already imported as import #{id} on {when}: nothing new was added.",
          { id: r.already_imported.import_id, when: window.wl.when(r.already_imported.at) })));
    }
    for (const w of r.warnings || []) reportBody.append(el("p", { class: "warning" }, w));
    const reasons = Object.entries(r.reasons || {});
    if (reasons.length) {
      const body = el("tbody");
      const english = window.wl.lang === "en";
      for (const [code, n] of reasons) {
        body.append(el("tr", {}, el("th", { scope: "row" }, el("code", { lang: english ? null : "en" }, code)),
          el("td", {}, n)));
      }
      reportBody.append(el("table", {}, el("caption", {}, t("Rejected rows by reason")),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("Reason")), el("th", { scope: "col" }, t("Rows")))),
        body));
      reportBody.append(el("p", {}, el("a", { href: "/api/imports/" + r.import_id + "/rejects.csv", download: true },
        t("Download every rejected row (CSV)"))));
    }
    reportBody.append(el("p", {}, el("a", { href: "/console/imports/" + r.import_id },
      t("Full report of import #{id}", { id: r.import_id }))));
    report.hidden = false;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    if (!needFile()) return;
    const data = new FormData(form);
    for (const key of ["mapping", "header_row", "sheet"]) {
      if (!String(data.get(key) || "").trim()) data.delete(key);
    }
    const dnc = document.getElementById("dnc-file");
    if (!dnc.files || !dnc.files.length) data.delete("dnc_file");
    const name = fileInput.files[0].name;
    const xhr = new XMLHttpRequest();
    let announced = -1;
    xhr.open("POST", base + "/lists");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((e.loaded / e.total) * 100);
      progress.value = pct;
      progress.textContent = pct + "%";
      const step = Math.floor(pct / 25);
      if (step !== announced && pct < 100) {
        announced = step;
        say(t("Uploading {file}: {percent}%", { file: name, percent: pct }));
      }
    });
    xhr.upload.addEventListener("load", () => {
      progress.value = 100;
      say(t("Upload complete. Checking every row of {file}…", { file: name }));
    });
    xhr.addEventListener("load", () => {
      importButton.disabled = false;
      const body = xhr.response;
      if (xhr.status !== 201) {
        showError(detail(body, t("Import failed ({status}).", { status: xhr.status })));
        importButton.focus();
        return;
      }
      renderReport(body);
      say(t("Import finished: {accepted} accepted, {rejected} rejected, {skipped} skipped of {rows} rows.",
        { accepted: body.accepted, rejected: body.rejected, skipped: body.skipped, rows: body.rows }));
      reportHeading.focus();
    });
    xhr.addEventListener("error", () => {
      importButton.disabled = false;
      showError(t("The upload was interrupted; nothing was imported. Try again."));
    });
    progressLine.hidden = false;
    progress.value = 0;
    importButton.disabled = true;
    report.hidden = true;
    say(t("Uploading {file}…", { file: name }));
    xhr.send(data);
  });
})();
