// Small DOM helpers shared by the console's pages (loaded by base.html before page scripts).
"use strict";
window.wl = {
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
};
