// Users (admins): list, add, change role, reset password, remove.
import { api, start, toast, el, when, formBody, cancellable, enc, me } from "./common.js";

const tbody = document.getElementById("user-rows");

function render(user) {
  const role = el("select", { "aria-label": `Role of ${user.name}` },
    new Option("member", "member"), new Option("admin", "admin"));
  role.value = user.role;
  role.addEventListener("change", async () => {
    try { render(await api("PATCH", `/api/users/${enc(user.name)}`, { role: role.value })); toast(`${user.name}: ${role.value}`); }
    catch (err) { toast(err.message, true); role.value = user.role; }
  });
  const tr = el("tr", { "data-name": user.name },
    el("th", { scope: "row", "data-label": "Name", class: "name", text: user.name + (me && user.name === me.name ? " (you)" : "") }),
    el("td", { "data-label": "Role" }, role),
    el("td", { "data-label": "Created", text: when(user.created_at) }),
    el("td", { "data-label": "Actions" }, el("div", { class: "actions" },
      el("button", { type: "button", "aria-label": `Reset password of ${user.name}`, text: "Reset password", onclick: () => passwd(user.name) }),
      el("button", { type: "button", class: "danger", "aria-label": `Remove ${user.name}`, text: "Remove", onclick: () => removeUser(user.name) }))));
  const old = tbody.querySelector(`tr[data-name="${CSS.escape(user.name)}"]`);
  if (old) old.replaceWith(tr); else tbody.append(tr);
}

let target = null;
function passwd(name) {
  target = name;
  const dialog = document.getElementById("passwd-dialog");
  dialog.querySelector(".target").textContent = name;
  document.getElementById("passwd-value").value = "";
  dialog.showModal();
}

async function removeUser(name) {
  if (!confirm(`Remove user ${name}? Their sessions end; their accounts and keys stay, unowned.`)) return;
  try { await api("DELETE", `/api/users/${enc(name)}`); tbody.querySelector(`tr[data-name="${CSS.escape(name)}"]`).remove(); toast(`${name} removed`); }
  catch (err) { toast(err.message, true); }
}

start(async () => {
  if (me.role !== "admin") { tbody.append(el("tr", {}, el("td", { colspan: 4, text: "Only admins manage users." }))); return; }
  for (const user of (await api("GET", "/api/users")).data) render(user);
  document.getElementById("user-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { render(await api("POST", "/api/users", formBody(e.target))); e.target.reset(); toast("user added"); }
    catch (err) { toast(err.param ? `${err.param}: ${err.message}` : err.message, true); }
  });
  const dialog = cancellable(document.getElementById("passwd-dialog"));
  document.getElementById("passwd-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await api("PATCH", `/api/users/${enc(target)}`, { password: document.getElementById("passwd-value").value }); dialog.close(); toast(`password of ${target} set`); }
    catch (err) { toast(err.message, true); }
  });
  document.body.dataset.ready = "yes";
});
