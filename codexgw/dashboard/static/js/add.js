// Add an account: the device-code flow and the PKCE flow, both run by the server
// (POST /api/logins/device|pkce); the page follows the login through "login" events (and a slow
// poll as a fallback) and shows the new account the moment it is approved ("account" events).
import { api, start, on, everySecond, toast, duration, nowS, el, copyText, formBody, enc } from "./common.js";

const flows = new Map(); // login id -> {kind, expiresAt, done}
const list = document.getElementById("added-accounts");
const names = new Set();

function showAccount(account, fresh) {
  if (account.removed || account.deleted) {
    const li = list.querySelector(`li[data-name="${CSS.escape(account.name)}"]`);
    if (li) li.remove();
    names.delete(account.name);
    return;
  }
  let li = list.querySelector(`li[data-name="${CSS.escape(account.name)}"]`);
  if (!li) {
    li = el("li", { "data-name": account.name });
    list.append(li);
    names.add(account.name);
  }
  li.textContent = `${account.name}${account.email ? " · " + account.email : ""} · ${account.status}`;
  if (fresh) li.classList.add("new");
}

function statusLine(kind) { return document.getElementById(`${kind}-status`); }

function follow(login) {
  const flow = flows.get(login.id);
  if (!flow || flow.done) return;
  const line = statusLine(flow.kind);
  if (login.status === "pending") { line.textContent = "Waiting for approval…"; return; }
  flow.done = true;
  if (login.status === "approved") {
    line.textContent = `Approved: account ${login.account} added.`;
    line.className = "status-line ok";
    toast(`account ${login.account} added`);
    api("GET", `/api/accounts/${enc(login.account)}`).then((a) => showAccount(a, true)).catch(() => {});
  } else {
    line.textContent = login.status === "expired" ? "The code expired; start again." : `Failed: ${login.error || login.status}`;
    line.className = "status-line error";
  }
}

function countdown(kind, id) {
  const node = document.getElementById(`${kind}-countdown`);
  everySecond(() => {
    const flow = flows.get(id);
    if (!flow || flows.get("current-" + kind) !== id) return;
    node.textContent = flow.done ? "–" : duration(flow.expiresAt - nowS());
  });
}

async function poll(id) { // a fallback for a dropped event stream: every 5 s while pending
  while (flows.has(id) && !flows.get(id).done) {
    await new Promise((r) => setTimeout(r, 5000));
    try { follow(await api("GET", `/api/logins/${enc(id)}`)); } catch { return; }
  }
}

function track(kind, login) {
  // expires_in is relative to now; expires_at is the server's epoch (its clock may differ)
  const expiresAt = login.expires_in !== undefined ? nowS() + login.expires_in : login.expires_at;
  flows.set(login.id, { kind, expiresAt, done: false });
  flows.set("current-" + kind, login.id);
  const line = statusLine(kind);
  line.className = "status-line";
  line.textContent = "Waiting for approval…";
  countdown(kind, login.id);
  poll(login.id);
}

start(async () => {
  const params = new URLSearchParams(location.search);
  if (params.get("name")) {
    document.getElementById("device-name").value = params.get("name");
    document.getElementById("pkce-name").value = params.get("name");
  }
  on("login", follow);
  on("account", (a) => showAccount(a, !names.has(a.name)));
  const accounts = await api("GET", "/api/accounts");
  for (const a of accounts.data) showAccount(a, false);

  document.getElementById("device-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const login = await api("POST", "/api/logins/device", formBody(e.target));
      document.getElementById("device-flow").hidden = false;
      const link = document.getElementById("device-link");
      link.href = login.verification_uri_complete || login.verification_uri;
      link.textContent = login.verification_uri;
      document.getElementById("device-code").value = login.user_code;
      track("device", login);
    } catch (err) { toast(err.message, true); }
  });
  document.getElementById("device-copy").addEventListener("click", async () => {
    const ok = await copyText(document.getElementById("device-code").value);
    toast(ok ? "code copied" : "select the code and copy it", !ok);
  });

  let pkceId = null;
  document.getElementById("pkce-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const login = await api("POST", "/api/logins/pkce", formBody(e.target));
      pkceId = login.id;
      document.getElementById("pkce-flow").hidden = false;
      document.getElementById("pkce-link").href = login.authorize_url;
      track("pkce", login);
    } catch (err) { toast(err.message, true); }
  });
  document.getElementById("pkce-paste").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      follow(await api("POST", `/api/logins/${enc(pkceId)}/redirect`, { url: document.getElementById("pkce-url").value.trim() }));
    } catch (err) { toast(err.message, true); }
  });
  document.body.dataset.ready = "yes";
});
