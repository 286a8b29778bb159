// First admin: POST /api/setup with the one-time token from the link `serve` printed.
import { api, useSession } from "./common.js";

const form = document.getElementById("setup-form");
const error = document.getElementById("setup-error");
const token = new URLSearchParams(location.search).get("token");
if (token) form.elements.token.value = token;
history.replaceState(null, "", location.pathname); // the token leaves the address bar (and history)

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.hidden = true;
  try {
    useSession(await api("POST", "/api/setup", {
      token: form.elements.token.value.trim(), user: form.elements.user.value.trim(), password: form.elements.password.value,
    }));
    location.assign("/dashboard");
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});
document.body.dataset.ready = "yes";
