"""The report's inline stylesheet and script (no external resource of any kind)."""

from __future__ import annotations

#: forbids every network request: only the page's own inline styles and scripts, and data: images
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --fg: #1d2430; --muted: #5b6472; --line: #d9dee5; --bg: #ffffff; --alt: #f5f7fa; --accent: #1f5fae; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); background: var(--alt); }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: var(--muted); }
nav { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav a { color: var(--accent); text-decoration: none; }
main { padding: 4px 28px 30px; max-width: 1400px; }
section { margin-top: 22px; }
h2 { font-size: 20px; border-bottom: 2px solid var(--accent); padding-bottom: 3px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p.note, .note { color: var(--muted); font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 130px; background: var(--alt); }
.card b { display: block; font-size: 20px; }
.card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 8px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: var(--alt); }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th::after { content: " \\2195"; color: #aab; }
table.sortable th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--accent); }
table.sortable th[aria-sort="descending"]::after { content: " \\2193"; color: var(--accent); }
.wrap { overflow-x: auto; }
.status { padding: 0 6px; border-radius: 8px; font-size: 12px; white-space: nowrap; }
.s-completed { background: #dff3e4; color: #1d6b34; }
.s-diverged, .s-failed, .s-unreadable { background: #fbe0e0; color: #9b1c1c; }
.s-interrupted, .s-running, .s-incomplete, .s-unknown, .s-skipped { background: #fdf1d6; color: #8a5a00; }
.controls { display: flex; gap: 16px; align-items: center; margin: 4px 0; font-size: 13px; }
.figure svg.fig { width: 100%; max-width: 1100px; height: auto; display: block; }
.figure.small svg.fig { max-width: 780px; }
table.results td:first-child, table.failures td:nth-child(2) { min-width: 240px; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
pre { background: var(--alt); padding: 6px 8px; border-radius: 4px; white-space: pre-wrap; margin: 4px 0; }
details summary { cursor: pointer; color: var(--accent); }
.flag { color: #9b1c1c; font-weight: 600; }
footer { border-top: 1px solid var(--line); padding: 12px 28px 24px; color: var(--muted); font-size: 13px; }
"""

JS = r"""
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function (event) {
    body.setAttribute("data-js-errors", (body.getAttribute("data-js-errors") || "") + event.message + ";");
  });

  // ---- curves: pick the x axis and linear/log y (pre-rendered variants in <template>s)
  function showVariant(block) {
    var x = block.querySelector("[data-role=x]").value;
    var log = block.querySelector("[data-role=log]").checked;
    var name = x + "-" + (log ? "log" : "linear");
    var holder = block.querySelector(".figure");
    if (holder.getAttribute("data-variant") === name) { return true; }
    var template = block.querySelector('template[data-variant="' + name + '"]');
    if (!template) { return false; }
    var current = holder.getAttribute("data-variant");
    if (!block.querySelector('template[data-variant="' + current + '"]')) {
      // the variant shown at load has no template yet: keep it in one, so it can come back
      var keep = document.createElement("template");
      keep.setAttribute("data-variant", current);
      while (holder.firstChild) { keep.content.appendChild(holder.firstChild); }
      block.appendChild(keep);
    }
    holder.replaceChildren(template.content.cloneNode(true));
    holder.setAttribute("data-variant", name);
    return true;
  }
  var blocks = document.querySelectorAll(".curves");
  blocks.forEach(function (block) {
    block.querySelectorAll("[data-role]").forEach(function (control) {
      control.addEventListener("change", function () { showVariant(block); });
    });
  });

  // ---- sortable tables: click a header; numbers sort by their data-v value, empty cells last
  function cellKey(cell) {
    if (!cell) { return { empty: true }; }
    var v = cell.getAttribute("data-v");
    if (v !== null) {
      if (v === "") { return { empty: true }; }
      return { num: parseFloat(v) };
    }
    var text = cell.textContent.trim();
    return text === "" ? { empty: true } : { text: text.toLowerCase() };
  }
  function compare(a, b) {
    if (a.empty || b.empty) { return a.empty && b.empty ? 0 : (a.empty ? 1 : -1); }
    if ("num" in a && "num" in b) { return a.num - b.num; }
    var ta = "text" in a ? a.text : String(a.num), tb = "text" in b ? b.text : String(b.num);
    return ta < tb ? -1 : ta > tb ? 1 : 0;
  }
  function sortTable(table, column, descending) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var keyed = rows.map(function (row, index) { return { row: row, key: cellKey(row.cells[column]), index: index }; });
    keyed.sort(function (p, q) {
      var c = compare(p.key, q.key);
      if (p.key.empty || q.key.empty) { return c || p.index - q.index; }
      return (descending ? -c : c) || p.index - q.index;
    });
    keyed.forEach(function (item) { tbody.appendChild(item.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === column) { th.setAttribute("aria-sort", descending ? "descending" : "ascending"); }
      else { th.removeAttribute("aria-sort"); }
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      th.addEventListener("click", function () {
        sortTable(table, column, th.getAttribute("aria-sort") === "ascending");
      });
    });
    table.setAttribute("data-sortable-ready", "1");
  });

  // ---- #selftest: the browser tests drive every control once and record what they saw
  if (location.hash === "#selftest") {
    var problems = [];
    blocks.forEach(function (block) {
      var select = block.querySelector("[data-role=x]"), box = block.querySelector("[data-role=log]");
      Array.prototype.forEach.call(select.options, function (option) {
        [true, false].forEach(function (log) {
          select.value = option.value; box.checked = log;
          select.dispatchEvent(new Event("change"));
          var holder = block.querySelector(".figure");
          var want = option.value + "-" + (log ? "log" : "linear");
          if (holder.getAttribute("data-variant") !== want || !holder.firstElementChild) {
            problems.push(block.id + ":" + want);
          }
        });
      });
      select.value = select.options[0].value; box.checked = true; showVariant(block);
    });
    document.querySelectorAll("table.sortable").forEach(function (table, t) {
      var heads = table.tHead.rows[0].cells;
      for (var c = 0; c < heads.length; c++) {
        heads[c].click();
        var keys = Array.prototype.map.call(table.tBodies[0].rows, function (row) { return cellKey(row.cells[c]); });
        for (var i = 1; i < keys.length; i++) {
          if (!keys[i].empty && (keys[i - 1].empty || compare(keys[i - 1], keys[i]) > 0)) {
            problems.push("table" + t + ":col" + c); break;
          }
        }
      }
    });
    body.setAttribute("data-selftest", problems.length ? problems.join(",") : "ok");
  }
  window.addEventListener("load", function () {
    setTimeout(function () {
      var nav = performance.getEntriesByType("navigation")[0];
      if (nav) { body.setAttribute("data-load-ms", String(Math.round(nav.loadEventEnd))); }
    }, 0);
  });
  body.setAttribute("data-ready", "1");
})();
"""
