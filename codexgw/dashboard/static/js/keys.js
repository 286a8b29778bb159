// API keys: list (GET /api/keys), create (secret shown once), edit limits and scope, revoke,
// rotate, and each key's usage as two charts. "key" events keep the list live.
import { api, start, on, toast, el, ago, when, num, formBody, cancellable, copyText, enc, me, nowS } from "./common.js";
import { timeChart, fillBuckets, tokens } from "./charts.js";

const rows = new Map();
const tbody = document.getElementById("key-rows");

function scope(key) {
  const parts = [];
  if (key.accounts) parts.push(`accounts: ${key.accounts.join(", ")}`);
  if (key.models) parts.push(`models: ${key.models.join(", ")}`);
  if (key.admin) parts.push("admin");
  return parts.join("; ") || "whole scope";
}

function limits(key) {
  const parts = [];
  if (key.rpm) parts.push(`${num(key.rpm)} req/min`);
  if (key.tpm) parts.push(`${num(key.tpm)} tok/min`);
  if (key.tokens_per_day) parts.push(`${num(key.tokens_per_day)} tok/day`);
  if (key.max_streams) parts.push(`${key.max_streams} at once`);
  if (key.max_effort) parts.push(`effort ≤ ${key.max_effort}`);
  if (key.reasoning_mode) parts.push(`reasoning ${key.reasoning_mode}`);
  return parts.join(", ") || "none";
}

function button(label, keyName, onclick, cls) {
  return el("button", { type: "button", class: cls, "aria-label": `${label} ${keyName}`, onclick, text: label });
}

function render(key) {
  const old = rows.get(key.name);
  const status = key.status || (key.revoked_at ? "revoked" : "active");
  const live = status === "active";
  const tr = el("tr", { "data-name": key.name, class: live ? null : "off" },
    el("th", { scope: "row", "data-label": "Name", class: "name", text: key.name }),
    el("td", { "data-label": "Prefix", class: "prefix", text: key.prefix + "…" }),
    el("td", { "data-label": "Owner", text: key.owner || "–" }),
    el("td", { "data-label": "Status" }, el("span", { class: `badge ${status}`, text: status })),
    el("td", { "data-label": "Scope", text: scope(key) }),
    el("td", { "data-label": "Limits", text: limits(key) }),
    el("td", { "data-label": "Expires", text: key.expires_at ? when(key.expires_at) : "never" }),
    el("td", { "data-label": "Last used", text: ago(key.last_used_at) }),
    el("td", { "data-label": "Actions" }, el("div", { class: "actions" },
      button("Usage", key.name, () => showUsage(key.name)),
      live ? button("Edit", key.name, () => edit(key)) : null,
      live ? button("Rotate", key.name, () => rotate(key.name)) : null,
      live ? button("Revoke", key.name, () => revoke(key.name), "danger") : null,
    )),
  );
  rows.set(key.name, key);
  const existing = tbody.querySelector(`tr[data-name="${CSS.escape(key.name)}"]`);
  if (existing) existing.replaceWith(tr);
  else if (!old) tbody.append(tr);
  document.getElementById("keys-empty").hidden = rows.size > 0;
}

function showSecret(key) {
  const dialog = document.getElementById("secret-dialog");
  dialog.querySelector(".target").textContent = key.name;
  const input = document.getElementById("secret-value");
  input.value = key.secret;
  dialog.addEventListener("close", () => { input.value = ""; }, { once: true }); // gone from the page
  dialog.showModal();
  input.select();
}

function fill(form, key) {
  for (const control of form.elements) {
    if (!control.name || !(control.name in key)) continue;
    const value = key[control.name];
    if (control.dataset.kind === "bool") control.checked = !!value;
    else if (Array.isArray(value)) control.value = value.join(", ");
    else control.value = value ?? "";
  }
  const expires = form.elements.namedItem("expires");
  if (expires) expires.value = key.expires_at ? new Date(key.expires_at * 1000).toISOString().slice(0, 10) : "";
  for (const control of form.elements) if (control.name) control.dataset.initial = control.type === "checkbox" ? String(control.checked) : control.value;
}

/** The fields the user changed in the edit form (an untouched expiry date must not move the
 *  expiry to that day's midnight). */
function changed(form) {
  const body = formBody(form, true);
  for (const control of form.elements) {
    const now = control.type === "checkbox" ? String(control.checked) : control.value;
    if (control.name && now === control.dataset.initial) delete body[control.name];
  }
  return body;
}

let editing = null;
function edit(key) {
  editing = key.name;
  const dialog = document.getElementById("edit-dialog");
  dialog.querySelector(".target").textContent = key.name;
  fill(document.getElementById("edit-form"), key);
  dialog.showModal();
}

let rotating = null;
function rotate(name) {
  rotating = name;
  const dialog = document.getElementById("rotate-dialog");
  dialog.querySelector(".target").textContent = name;
  dialog.showModal();
}

async function revoke(name) {
  if (!confirm(`Revoke key ${name}? Clients using it get 401 at once.`)) return;
  try { await api("DELETE", `/api/keys/${enc(name)}`); render(await api("GET", `/api/keys/${enc(name)}`)); toast(`${name} revoked`); }
  catch (err) { toast(err.message, true); }
}

async function showUsage(name) {
  const box = document.getElementById("key-usage");
  box.hidden = false;
  box.querySelector(".target").textContent = name;
  const [days, hours] = await Promise.all([
    api("GET", `/api/keys/${enc(name)}/usage?since=7d&by=day`),
    api("GET", `/api/keys/${enc(name)}/usage?since=48h&by=hour`),
  ]);
  const now = nowS();
  const d = fillBuckets(days.data, 86400, now - 6 * 86400, now);
  timeChart(document.getElementById("key-chart-day"), d.map((r) => Number(r.bucket)),
    [{ label: "tokens", values: d.map(tokens) }], { bars: true });
  const h = fillBuckets(hours.data, 3600, now - 47 * 3600, now);
  timeChart(document.getElementById("key-chart-hour"), h.map((r) => Number(r.bucket)),
    [{ label: "requests", values: h.map((r) => r.requests || 0) }], { bars: true });
  box.scrollIntoView({ block: "nearest" });
}

start(async () => {
  on("key", render);
  const keys = await api("GET", "/api/keys");
  for (const key of keys.data) render(key);
  document.getElementById("keys-empty").hidden = rows.size > 0;

  document.getElementById("key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const key = await api("POST", "/api/keys", formBody(e.target));
      render(key);
      showSecret(key);
      e.target.reset();
    } catch (err) { toast(err.param ? `${err.param}: ${err.message}` : err.message, true); }
  });
  const editDialog = cancellable(document.getElementById("edit-dialog"));
  document.getElementById("edit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { render(await api("PATCH", `/api/keys/${enc(editing)}`, changed(e.target))); editDialog.close(); toast(`${editing} saved`); }
    catch (err) { toast(err.param ? `${err.param}: ${err.message}` : err.message, true); }
  });
  const rotateDialog = cancellable(document.getElementById("rotate-dialog"));
  document.getElementById("rotate-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const key = await api("POST", `/api/keys/${enc(rotating)}/rotate`, { grace: document.getElementById("rotate-grace").value.trim() || "0" });
      rotateDialog.close();
      render(key);
      showSecret(key);
    } catch (err) { toast(err.message, true); }
  });
  document.getElementById("secret-copy").addEventListener("click", async () => {
    const ok = await copyText(document.getElementById("secret-value").value);
    toast(ok ? "secret copied" : "select the secret and copy it (Ctrl+C)", !ok);
    document.body.dataset.copied = ok ? "yes" : "no";
  });
  if (me.role !== "admin") for (const n of document.querySelectorAll(".admin-only")) n.hidden = true;
  document.body.dataset.ready = "yes";
});
