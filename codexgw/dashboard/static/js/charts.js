// Charts over the vendored uPlot (window.uPlot, loaded by the page before this module).

const COLORS = ["#1f4e79", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#57606a"];

/** Draw (or redraw) a time chart in `box`: times (epoch s) and one array per series
 *  ({label, values}). Bars when `bars`, else lines. */
export function timeChart(box, times, series, { bars = false, height = 220 } = {}) {
  if (box._plot) { box._plot.destroy(); box._plot = null; }
  box.textContent = "";
  if (!times.length) { box.textContent = "No requests in this period."; return null; }
  const width = Math.max(280, box.clientWidth || 600);
  const paths = bars && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.7, 40] }) : undefined;
  const opts = {
    width, height,
    // Bars: half a step of room at both ends, so the first and last bars are not cut in half.
    scales: { x: bars && times.length > 1
      ? { time: true, range: (u, min, max) => { const half = (times[1] - times[0]) * 0.6; return [min - half, max + half]; } }
      : { time: true } },
    axes: [{}, { size: 60 }],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 2,
      fill: bars ? COLORS[i % COLORS.length] + "55" : undefined, paths,
    }))],
  };
  box._plot = new window.uPlot(opts, [times, ...series.map((s) => s.values)], box);
  box.dataset.points = String(times.length);
  return box._plot;
}

/** Fill the empty hours/days between `since` and now so bars sit at their real time. */
export function fillBuckets(rows, stepS, sinceS, nowS) {
  const byBucket = new Map(rows.map((r) => [Number(r.bucket), r]));
  const start = Math.floor(sinceS / stepS) * stepS;
  const out = [];
  for (let t = start; t <= nowS; t += stepS) out.push(byBucket.get(t) || { bucket: t });
  for (const r of rows) if (Number(r.bucket) < start) out.unshift(r);
  return out;
}

export const tokens = (r) => (r.input_tokens || 0) + (r.output_tokens || 0);
