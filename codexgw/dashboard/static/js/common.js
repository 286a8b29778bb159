// Shared by every dashboard page: the admin API client (session cookie + CSRF header), the one
// EventSource on /api/events, the one-second ticker for countdowns, and small DOM/format helpers.
// No framework; ES modules served from this origin (the CSP allows nothing else).

const PUBLIC_PAGES = new Set(["login", "setup"]);
let csrfToken = null;
export let me = null; // {name, role} once the session is known

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error && error.code;
    this.param = error && error.param;
  }
}

/** Call the admin API. Non-GET requests carry the session's CSRF token. Resolves to the JSON
 *  answer (null for 204); rejects with ApiError (and goes to the login page on 401). */
export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["x-csrf-token"] = csrfToken;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    if (response.status === 401 && !PUBLIC_PAGES.has(document.body.dataset.page)) toLogin();
    throw new ApiError(response.status, data && data.error);
  }
  return data;
}

let leaving = false; // toLogin() navigates once: a page's parallel calls may all get 401

export function toLogin() {
  if (leaving) return;
  leaving = true; // a second location.assign would abort the first navigation (net::ERR_ABORTED)
  const next = location.pathname + location.search;
  location.assign("/dashboard/login?next=" + encodeURIComponent(next));
}

/** Remember what POST/GET /api/session answered and show who is logged in. */
export function useSession(answer) {
  csrfToken = answer.csrf_token;
  me = answer.user;
  document.body.dataset.role = me.role;
  document.body.dataset.signedIn = "yes";
  const who = document.getElementById("whoami");
  if (who) who.textContent = `${me.name} (${me.role})`;
  const out = document.getElementById("logout");
  if (out) out.hidden = false;
}

/** Start a page: read the session (to the login page without one), wire logout, then init().
 *  `early` (optional) is a promise the page started before, in parallel with the session read. */
export async function start(init, early) {
  const out = document.getElementById("logout");
  if (out) out.addEventListener("click", async () => {
    try { await api("DELETE", "/api/session"); } finally { location.assign("/dashboard/login"); }
  });
  if (early) early.catch(() => {}); // its 401 is the session's too
  try {
    useSession(await api("GET", "/api/session"));
  } catch (err) {
    if (err.status !== 401) toast(`Cannot reach the API: ${err.message}`, true);
    return;
  }
  try { await init(); } catch (err) { toast(err.message, true); throw err; }
}

// -- live events -------------------------------------------------------------------------------

const handlers = {};
let source = null;

/** Run fn(data) for each /api/events event of this type (opens the stream on first use). */
export function on(type, fn) {
  (handlers[type] ||= []).push(fn);
  if (source) source.addEventListener(type, dispatch);
  else connect();
}

function dispatch(event) {
  let data;
  try { data = JSON.parse(event.data); } catch { return; }
  for (const fn of handlers[event.type] || []) fn(data);
}

function connect() {
  source = new EventSource("/api/events");
  const live = document.getElementById("live");
  if (live) live.hidden = false;
  for (const type of Object.keys(handlers)) source.addEventListener(type, dispatch);
  let opened = false;
  source.addEventListener("open", () => {
    if (live) { live.textContent = "live"; live.classList.add("on"); }
    document.body.dataset.live = "yes";
    if (opened) for (const fn of handlers.reopen || []) fn(); // back after a drop: pages catch up
    opened = true;
  });
  source.addEventListener("error", () => {
    if (live) { live.textContent = "reconnecting"; live.classList.remove("on"); }
    document.body.dataset.live = "no";
  });
}

// -- the one-second ticker -----------------------------------------------------------------------

const tickers = new Set();
let interval = null;

/** Call fn() now and every second while the page is open (countdowns). */
export function everySecond(fn) {
  tickers.add(fn);
  fn();
  if (!interval) interval = setInterval(() => { for (const t of tickers) t(); }, 1000);
}

// -- DOM and formatting ----------------------------------------------------------------------------

/** el("td", {class: "num"}, "12") */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

let toastTimer = null;
export function toast(message, bad = false) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.classList.toggle("bad", bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, bad ? 8000 : 3500);
}

/** 75 → "1m 15s"; 7300 → "2h 01m"; 200000 → "2d 07h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  let s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d ${two(h)}h`;
  if (h) return `${h}h ${two(m)}m`;
  if (m) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

export const nowS = () => Date.now() / 1000;

/** epoch s → "3m ago" (or "never"). */
export function ago(epoch) {
  if (!epoch) return "never";
  const s = nowS() - epoch;
  return s < 5 ? "just now" : `${duration(s)} ago`;
}

/** epoch s → "2026-12-02 05:31 UTC". */
export function when(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

export const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
export const pct = (n) => (n === null || n === undefined ? "–" : `${Math.round(n)} %`);

/** The values of a form's named controls as an API body: data-kind="int|num|bool|list"; empty
 *  text fields become null when keepEmpty, else are left out. */
export function formBody(form, keepEmpty = false) {
  const body = {};
  for (const control of form.elements) {
    if (!control.name || control.disabled || control.closest(".admin-only[hidden]")) continue;
    if (me && me.role !== "admin" && control.classList.contains("admin-only")) continue;
    const kind = control.dataset.kind;
    if (kind === "bool") { body[control.name] = control.checked; continue; }
    const raw = control.value.trim();
    if (raw === "") { if (keepEmpty) body[control.name] = null; continue; }
    if (kind === "int") body[control.name] = parseInt(raw, 10);
    else if (kind === "num") body[control.name] = Number(raw);
    else if (kind === "list") body[control.name] = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else body[control.name] = raw;
  }
  return body;
}

/** Wire a <dialog>'s ".cancel" buttons to close it. */
export function cancellable(dialog) {
  for (const b of dialog.querySelectorAll(".cancel")) b.addEventListener("click", () => dialog.close());
  return dialog;
}

export async function copyText(text) {
  try { await navigator.clipboard.writeText(text); return true; } catch { return false; }
}

export const enc = encodeURIComponent;
