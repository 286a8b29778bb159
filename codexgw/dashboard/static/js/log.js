// Live log: each "request" event from /api/events becomes a line, newest on top, filtered in the
// page by key, account and status class.
import { start, on, el, num, toast } from "./common.js";

const MAX_LINES = 500;
const form = document.getElementById("log-filter");
const tbody = document.getElementById("log-rows");

function matches(tr) {
  if (form.elements.v1.checked && !tr.dataset.path.startsWith("/v1/")) return false;
  const key = form.elements.key.value.trim();
  const account = form.elements.account.value.trim();
  const status = form.elements.status.value;
  if (key && !tr.dataset.key.includes(key)) return false;
  if (account && !tr.dataset.account.includes(account)) return false;
  if (status === "err") return Number(tr.dataset.status) >= 400;
  if (status) return tr.dataset.status.startsWith(status);
  return true;
}

function line(r) {
  const s = String(r.status);
  const tr = el("tr", { class: `s${s[0]} fresh`, "data-key": r.key || "", "data-account": r.account || "", "data-status": s, "data-path": r.path || "" },
    el("td", { "data-label": "Time", text: new Date(r.at * 1000).toISOString().slice(11, 19) }),
    el("td", { "data-label": "Request", class: "mono", text: `${r.method} ${r.path}` }),
    el("td", { "data-label": "Status", class: "status", text: s }),
    el("td", { "data-label": "Key", text: r.key || "–" }),
    el("td", { "data-label": "Account", text: r.account || "–" }),
    el("td", { "data-label": "Model", text: r.model || "–" }),
    el("td", { "data-label": "Tokens in / out", class: "num", text: `${num(r.tokens_in)} / ${num(r.tokens_out)}` }),
    el("td", { "data-label": "Duration", class: "num", text: r.duration_ms === undefined || r.duration_ms === null ? "–" : `${Math.round(r.duration_ms)} ms` }),
    el("td", { "data-label": "Outcome", text: r.outcome || "" }),
  );
  tr.hidden = !matches(tr);
  setTimeout(() => tr.classList.remove("fresh"), 2000);
  return tr;
}

start(async () => {
  on("request", (r) => {
    if (form.elements.pause.checked) return;
    tbody.prepend(line(r));
    while (tbody.children.length > MAX_LINES) tbody.lastElementChild.remove();
  });
  const refilter = () => { for (const tr of tbody.children) tr.hidden = !matches(tr); };
  form.addEventListener("input", refilter);
  form.addEventListener("change", refilter);
  form.addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("log-clear").addEventListener("click", () => { tbody.textContent = ""; toast("cleared"); });
  document.body.dataset.ready = "yes";
});
