// Log in: POST /api/session, then on to ?next= (same-origin paths only) or the pool.
import { api, useSession } from "./common.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

function next() {
  const target = new URLSearchParams(location.search).get("next") || "/dashboard";
  return target.startsWith("/") && !target.startsWith("//") ? target : "/dashboard";
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.hidden = true;
  try {
    useSession(await api("POST", "/api/session", { user: form.elements.user.value.trim(), password: form.elements.password.value }));
    location.assign(next());
  } catch (err) {
    error.textContent = err.status === 429 ? "Too many failed logins; wait a minute." : err.status === 401 ? "Wrong user name or password." : err.message;
    error.hidden = false;
    form.elements.password.select();
  }
});
api("GET", "/api/session").then(() => location.assign(next())).catch(() => {}); // already logged in
document.body.dataset.ready = "yes";
