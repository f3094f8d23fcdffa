// The console's own script: no inline scripts exist (the CSP forbids them), so page behaviour lives here.
"use strict";

// Every htmx request carries the session's CSRF token.
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) event.detail.headers["X-CSRF-Token"] = meta.content;
});

// <button data-copy="#id"> copies the text of the element it names.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.value !== undefined ? source.value : source.textContent;
  const done = () => { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(source, done));
  } else {
    fallbackCopy(source, done);
  }
});

function fallbackCopy(source, done) {
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try { document.execCommand("copy"); done(); } catch (_) { /* the text stays selected */ }
}

// <form data-confirm="..."> asks before it is sent (htmx's hx-confirm for plain forms).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Times are written in UTC (ISO 8601) and shown in the reader's time zone.
function localTimes(root) {
  root.querySelectorAll("time[datetime]").forEach((node) => {
    const moment = new Date(node.getAttribute("datetime"));
    if (!isNaN(moment)) node.title = moment.toLocaleString();
  });
}
document.addEventListener("DOMContentLoaded", () => localTimes(document));
document.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));

// Page scripts register here: window.turnoutPages["name"] runs for <main data-page="name">.
window.turnoutPages = window.turnoutPages || {};
function runPage(root) {
  root.querySelectorAll("[data-page]").forEach((node) => {
    const run = window.turnoutPages[node.dataset.page];
    if (run && !node.dataset.pageStarted) { node.dataset.pageStarted = "1"; run(node); }
  });
}
document.addEventListener("DOMContentLoaded", () => runPage(document));
document.addEventListener("htmx:afterSettle", (event) => runPage(event.target));
