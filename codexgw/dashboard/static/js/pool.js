// The pool page: one row per account from GET /api/accounts, the strategy and pin from GET /api/pool,
// kept live by "account" and "pool" events; countdowns tick every second.
import { api, start, on, everySecond, toast, duration, ago, pct, num, nowS, enc, me } from "./common.js";

const rows = new Map(); // name -> {tr, account, cooldownUntil}
const body = document.getElementById("account-rows");
const template = document.getElementById("account-row");
const strategy = document.getElementById("strategy");
const pinned = document.getElementById("pinned");
let pool = null;
let helpByName = {};

function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

function window_(cell, w) {
  const meter = cell.querySelector("meter");
  if (!w) {
    meter.hidden = true;
    setText(cell.querySelector(".pct"), "not probed");
    cell.dataset.resetsAt = "";
    setText(cell.querySelector(".reset"), "");
    return;
  }
  meter.hidden = false;
  meter.value = w.used_percent;
  meter.title = `${w.used_percent} % used of a ${duration(w.window_minutes * 60)} window`;
  meter.setAttribute("aria-label", `${cell.classList.contains("primary") ? "5 h" : "weekly"} quota used`);
  setText(cell.querySelector(".pct"), `${pct(w.used_percent)} used`);
  cell.dataset.resetsAt = w.resets_at || "";
}

function render(account, detached = false) {
  let row = rows.get(account.name);
  if (row && row.pending) account = { ...account, ...row.pending }; // the user's change wins until answered
  if (!row) {
    const tr = template.content.firstElementChild.cloneNode(true);
    row = { tr, account, cooldownUntil: null, pending: null };
    rows.set(account.name, row);
    wire(row);
    if (!detached) insertSorted(tr, account.name);
  } else if (detached) return row.tr;
  row.account = account;
  const { tr } = row;
  tr.dataset.name = account.name;
  tr.classList.toggle("off", !account.enabled);
  tr.classList.toggle("pinned", !!account.pinned);
  setText(tr.querySelector(".name"), account.name);
  setText(tr.querySelector(".email"), account.email || "");
  setText(tr.querySelector(".plan"), account.plan_type || "–");
  setText(tr.querySelector(".owner"), account.owner || "–");
  const status = tr.querySelector(".status");
  setText(status, account.enabled ? account.status : "disabled");
  status.className = "status badge " + (!account.enabled ? "disabled" : account.usable ? "ok" : account.cooldown ? "cooling" : "bad");
  setText(tr.querySelector(".reason"), account.status_reason || "");
  row.cooldownUntil = account.cooldown ? nowS() + account.cooldown.in_s : null;
  const enabled = tr.querySelector(".enabled");
  enabled.checked = !!account.enabled;
  enabled.setAttribute("aria-label", `${account.name} enabled`);
  const weight = tr.querySelector(".weight");
  if (document.activeElement !== weight) weight.value = account.weight ?? 1;
  weight.setAttribute("aria-label", `${account.name} weight`);
  const pin = tr.querySelector(".pin");
  setText(pin, account.pinned ? "Unpin" : "Pin");
  pin.setAttribute("aria-pressed", account.pinned ? "true" : "false");
  pin.setAttribute("aria-label", `${account.pinned ? "Unpin" : "Pin"} ${account.name}`);
  const quota = account.quota || {};
  window_(tr.querySelector(".quota.primary"), quota.primary);
  window_(tr.querySelector(".quota.secondary"), quota.secondary);
  setText(tr.querySelector(".requests"), num(account.requests));
  setText(tr.querySelector(".errors"), num(account.errors));
  const last = tr.querySelector(".last-used");
  setText(last, ago(account.last_used_at));
  last.title = account.last_error ? `last error: ${account.last_error}` : "";
  for (const b of tr.querySelectorAll("[data-action]")) b.setAttribute("aria-label", `${b.textContent} ${account.name}`);
  tr.querySelector('[data-action="relogin"]').href = `/dashboard/add?name=${enc(account.name)}`;
  tr.querySelector('[data-action="reset"]').hidden = !account.cooldown;
  tick(row);
  return tr;
}

function insertSorted(tr, name) {
  for (const other of body.children) {
    if (other.dataset.name > name) { body.insertBefore(tr, other); return; }
  }
  body.append(tr);
}

function remove(name) {
  const row = rows.get(name);
  if (row) { row.tr.remove(); rows.delete(name); }
  refreshPinOptions();
  document.getElementById("empty").hidden = rows.size > 0;
}

function tick(row) {
  const cd = row.tr.querySelector(".cooldown");
  setText(cd, row.cooldownUntil ? `cooling down, ${duration(row.cooldownUntil - nowS())} left` : "");
  for (const cell of row.tr.querySelectorAll(".quota")) {
    const at = Number(cell.dataset.resetsAt);
    setText(cell.querySelector(".reset"), at ? `resets in ${duration(at - nowS())}` : "");
  }
}

async function patchAccount(name, change) {
  const row = rows.get(name);
  row.pending = { ...row.pending, ...change }; // an event older than this change must not undo it
  try {
    const answer = await api("PATCH", `/api/accounts/${enc(name)}`, change);
    row.pending = null;
    render(answer);
  } catch (err) {
    row.pending = null;
    toast(`${name}: ${err.message}`, true);
    try { sync((await api("GET", "/api/accounts")).data); } catch { render(row.account); } // back to the truth
  }
}

function wire(row) {
  const { tr } = row;
  const name = () => row.account.name;
  tr.querySelector(".enabled").addEventListener("change", (e) => patchAccount(name(), { enabled: e.target.checked }));
  tr.querySelector(".weight").addEventListener("change", (e) => {
    const weight = Number(e.target.value);
    if (Number.isFinite(weight) && weight >= 0) patchAccount(name(), { weight });
  });
  tr.querySelector(".pin").addEventListener("click", () => setPin(row.account.pinned ? null : name()));
  for (const action of ["refresh", "probe", "reset"]) {
    tr.querySelector(`[data-action="${action}"]`).addEventListener("click", async (e) => {
      e.target.disabled = true;
      try {
        render(await api("POST", `/api/accounts/${enc(name())}/${action}`));
        toast(`${name()}: ${action === "refresh" ? "token refreshed" : action === "probe" ? "usage probed" : "cooldown cleared"}`);
      } catch (err) { toast(`${name()}: ${err.message}`, true); }
      finally { e.target.disabled = false; }
    });
  }
  tr.querySelector('[data-action="remove"]').addEventListener("click", () => confirmRemove(name()));
}

function confirmRemove(name) {
  const dialog = document.getElementById("confirm-remove");
  dialog.querySelector(".target").textContent = name;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "remove") return;
    const revoke = document.getElementById("remove-revoke").checked;
    try { await api("DELETE", `/api/accounts/${enc(name)}?revoke=${revoke}`); remove(name); toast(`${name} removed`); }
    catch (err) { toast(`${name}: ${err.message}`, true); }
  };
  dialog.showModal();
}

async function setPin(name) {
  try { showPool(await api("PATCH", "/api/pool", { pinned: name })); }
  catch (err) { toast(err.message, true); }
}

function refreshPinOptions() {
  const current = pool ? pool.pinned : null;
  const names = [...rows.keys()].sort();
  const wanted = ["", ...names].join("\n");
  if (pinned.dataset.names !== wanted) {
    pinned.length = 1;
    for (const n of names) pinned.add(new Option(n, n));
    pinned.dataset.names = wanted;
  }
  pinned.value = current || "";
}

function showPool(p) {
  pool = p;
  if (p.strategies) {
    helpByName = Object.fromEntries(p.strategies.map((s) => [s.name, s.help]));
    if (strategy.length !== p.strategies.length) {
      strategy.length = 0;
      for (const s of p.strategies) { const o = new Option(s.name, s.name); o.title = s.help; strategy.add(o); }
    }
  }
  strategy.value = p.strategy;
  strategy.title = helpByName[p.strategy] || "";
  document.getElementById("strategy-help").textContent =
    (helpByName[p.strategy] || "") + (p.pinned ? " Saved; it applies after unpinning." : "");
  refreshPinOptions();
  for (const row of rows.values()) {
    const isPinned = row.account.name === p.pinned;
    if (!!row.account.pinned !== isPinned) render({ ...row.account, pinned: isPinned });
  }
  if (typeof p.accounts === "number" && p.accounts !== rows.size) resyncSoon(); // added/removed elsewhere
  const h = p.headroom || {};
  const total = typeof p.accounts === "number" ? p.accounts : rows.size;
  document.getElementById("usable").textContent = `${p.usable ?? "–"} of ${total}`;
  document.getElementById("headroom").textContent = pct(h.percent);
  document.getElementById("headroom-worth").textContent =
    typeof h.accounts === "number" ? `${h.accounts.toFixed(2)} accounts' worth left` : "";
  document.getElementById("headroom-primary").textContent = pct(h.primary_percent);
  document.getElementById("headroom-secondary").textContent = pct(h.secondary_percent);
}

let resyncTimer = null;
function resyncSoon() { // the account list changed outside this page (the CLI, another tab)
  if (resyncTimer) return;
  resyncTimer = setTimeout(async () => { resyncTimer = null; try { sync((await api("GET", "/api/accounts")).data); } catch {} }, 300);
}

let poolTimer = null;
function reloadPoolSoon() { // headroom is a pool-wide sum: re-read it at most once a second
  if (poolTimer) return;
  poolTimer = setTimeout(async () => { poolTimer = null; try { showPool(await api("GET", "/api/pool")); } catch {} }, 1000);
}

// Read the rows at once, in parallel with the session (a 401 there is the session's 401 too).
const first = Promise.all([api("GET", "/api/accounts"), api("GET", "/api/pool")]);

start(async () => {
  const admin = me && me.role === "admin";
  strategy.disabled = !admin;
  pinned.disabled = !admin;
  strategy.addEventListener("change", async () => {
    try { showPool(await api("PATCH", "/api/pool", { strategy: strategy.value })); toast(`strategy: ${strategy.value}`); }
    catch (err) { toast(err.message, true); }
  });
  pinned.addEventListener("change", () => setPin(pinned.value || null));
  on("account", (a) => { if (a.removed || a.deleted) remove(a.name); else { render(a); refreshPinOptions(); reloadPoolSoon(); } });
  on("pool", (p) => showPool({ ...pool, ...p }));
  on("reopen", async () => { // reconnected: catch up on whatever happened while offline
    const [accounts, p] = await Promise.all([api("GET", "/api/accounts"), api("GET", "/api/pool")]);
    sync(accounts.data);
    showPool(p);
  });
  const [accounts, p] = await first;
  sync(accounts.data);
  showPool(p);
  everySecond(() => { for (const row of rows.values()) tick(row); });
  document.body.dataset.ready = "yes";
  // After the first paint with every row: what the bench times (bench/dashboard.py).
  requestAnimationFrame(() => setTimeout(() => performance.mark("codexgw:pool-rendered"), 0));
}, first);

function sync(accounts) {
  const seen = new Set(accounts.map((a) => a.name));
  for (const name of [...rows.keys()]) if (!seen.has(name)) remove(name);
  if (!rows.size) { // the first fill: build every row off-document, then insert them at once
    const fragment = document.createDocumentFragment();
    for (const a of [...accounts].sort((x, y) => (x.name < y.name ? -1 : 1))) fragment.append(render(a, true));
    body.append(fragment);
  }
  for (const a of accounts) render(a);
  refreshPinOptions();
  document.getElementById("empty").hidden = rows.size > 0;
}
