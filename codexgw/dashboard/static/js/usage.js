// Usage: requests and tokens over time (GET /api/usage?by=hour|day) with account/key/model
// filters, and the period's breakdown by account, key and model.
import { api, start, el, num, nowS } from "./common.js";
import { timeChart, fillBuckets, tokens } from "./charts.js";

const form = document.getElementById("usage-filter");
const SINCE_S = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

function query(extra) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...Object.fromEntries(new FormData(form)), ...extra })) if (v) params.set(k, v);
  return params.toString();
}

function breakdown(dim, data) {
  const tbody = document.querySelector(`#by-${dim} tbody`);
  tbody.textContent = "";
  const sorted = [...data].sort((a, b) => tokens(b) - tokens(a) || b.requests - a.requests);
  const top = Math.max(1, ...sorted.map(tokens));
  for (const r of sorted) {
    const share = el("span");
    share.style.width = `${Math.round((100 * tokens(r)) / top)}%`; // CSSOM, allowed by the CSP
    tbody.append(el("tr", {},
      el("th", { scope: "row", text: r.bucket === "-" ? "(no key)" : r.bucket }),
      el("td", { class: "num", text: num(r.requests) }),
      el("td", { class: "num", text: num(tokens(r)) }),
      el("td", { class: "bar", "aria-hidden": "true" }, share)));
  }
  if (!sorted.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "hint", text: "Nothing yet." })));
}

function options(select, values) {
  const keep = select.value;
  select.length = 1;
  for (const v of values) select.add(new Option(v === "-" ? "(no key)" : v, v));
  select.value = keep;
}

async function load() {
  const by = form.elements.by.value;
  const step = by === "hour" ? 3600 : 86400;
  const [series, accounts, keys, models] = await Promise.all([
    api("GET", `/api/usage?${query({})}`),
    api("GET", `/api/usage?${query({ by: "account" })}`),
    api("GET", `/api/usage?${query({ by: "key" })}`),
    api("GET", `/api/usage?${query({ by: "model" })}`),
  ]);
  const now = nowS();
  const rows = fillBuckets(series.data, step, now - SINCE_S[form.elements.since.value], now);
  const times = rows.map((r) => Number(r.bucket));
  timeChart(document.getElementById("chart-requests"), times, [
    { label: "requests", values: rows.map((r) => r.requests || 0) },
    { label: "errors", values: rows.map((r) => r.errors || 0) },
  ], { bars: true });
  timeChart(document.getElementById("chart-tokens"), times, [
    { label: "input", values: rows.map((r) => r.input_tokens || 0) },
    { label: "cached", values: rows.map((r) => r.cached_tokens || 0) },
    { label: "output", values: rows.map((r) => r.output_tokens || 0) },
    { label: "reasoning", values: rows.map((r) => r.reasoning_tokens || 0) },
  ]);
  breakdown("account", accounts.data);
  breakdown("key", keys.data);
  breakdown("model", models.data);
  if (!form.elements.account.value && !form.elements.key.value && !form.elements.model.value) {
    options(form.elements.account, accounts.data.map((r) => r.bucket));
    options(form.elements.key, keys.data.map((r) => r.bucket));
    options(form.elements.model, models.data.map((r) => r.bucket));
  }
  document.body.dataset.ready = "yes";
}

start(async () => {
  form.addEventListener("change", () => load().catch(() => {}));
  form.addEventListener("submit", (e) => e.preventDefault());
  await load();
});
