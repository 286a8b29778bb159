// Settings: GET/PATCH /api/settings (admins change them; members read them).
import { api, start, toast, formBody, me } from "./common.js";

const form = document.getElementById("settings-form");

function fill(settings) {
  for (const control of form.elements) if (control.name && control.name in settings) control.value = settings[control.name];
}

start(async () => {
  fill(await api("GET", "/api/settings"));
  if (me.role !== "admin") for (const c of form.elements) c.disabled = true;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { fill(await api("PATCH", "/api/settings", formBody(form))); toast("settings saved"); }
    catch (err) { toast(err.param ? `${err.param}: ${err.message}` : err.message, true); }
  });
  document.body.dataset.ready = "yes";
});
