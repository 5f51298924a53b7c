// The vibing2 dashboard: reads the monitor's JSON every few seconds (the dashboard's cookie
// authenticates it) and draws it. No library: the page builds its own DOM and SVG, and text
// from the server only ever goes in through textContent.
"use strict";

const PERIOD_MS = Math.max(250, Number(new URLSearchParams(location.search).get("refresh")) || 3000);
const HISTORY = 60;
const SVG = "http://www.w3.org/2000/svg";
const throughput = [];
const poolUse = [];
let previous = null;

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    location.reload();
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

const ms = (value) => (value == null ? "–" : `${value.toFixed(value < 10 ? 2 : 0)} ms`);
const pct = (value) => (value == null ? "–" : `${(value * 100).toFixed(1)}%`);
const bytes = (value) => {
  if (value == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
};
const when = (value) => (value ? new Date(value.endsWith("Z") || value.includes("+") ? value : `${value}Z`).toLocaleString() : "never");

/// Fills `table` with a header and rows; `columns` are [title, value of a row, numeric?].
function fillTable(table, columns, rows, emptyText) {
  table.replaceChildren();
  const head = el("tr");
  for (const [title, , numeric] of columns) head.append(el("th", numeric ? { class: "num" } : {}, title));
  table.append(head);
  if (rows.length === 0) {
    const row = el("tr");
    row.append(el("td", { class: "empty", colspan: columns.length }, emptyText));
    table.append(row);
    return;
  }
  for (const item of rows) {
    const row = el("tr");
    for (const [, value, numeric, wrap] of columns) {
      row.append(el("td", numeric ? { class: "num" } : wrap ? { class: "wrap" } : {}, String(value(item))));
    }
    table.append(row);
  }
}

/// A line chart of `points` (numbers), with an optional dashed limit line.
function lineChart(svg, points, limit) {
  svg.replaceChildren();
  const width = 600, height = 160, pad = 28;
  const top = Math.max(1, limit || 0, ...points) * 1.1;
  svg.append(svgEl("line", { class: "axis", x1: pad, y1: height - pad, x2: width, y2: height - pad }));
  svg.append(svgEl("text", { x: 2, y: 12 }, top.toFixed(top < 10 ? 1 : 0)));
  svg.append(svgEl("text", { x: 2, y: height - pad }, "0"));
  const y = (value) => height - pad - (value / top) * (height - 2 * pad);
  if (limit) svg.append(svgEl("line", { class: "limit", x1: pad, y1: y(limit), x2: width, y2: y(limit) }));
  if (points.length === 0) return;
  const step = (width - pad) / Math.max(1, HISTORY - 1);
  const path = points.map((value, i) => `${i === 0 ? "M" : "L"}${(pad + i * step).toFixed(1)},${y(value).toFixed(1)}`);
  svg.append(svgEl("path", { class: "series", d: path.join(" ") }));
}

/// Bars of p95 and p99 per route.
function routeBars(svg, routes) {
  svg.replaceChildren();
  const rowHeight = 18, labelWidth = 300, width = 900;
  svg.setAttribute("viewBox", `0 0 ${width} ${Math.max(1, routes.length) * rowHeight + 4}`);
  const top = Math.max(1, ...routes.map((route) => route.window.p99Ms));
  routes.forEach((route, i) => {
    const y = i * rowHeight + 2;
    const scale = (value) => ((width - labelWidth - 60) * value) / top;
    svg.append(svgEl("text", { x: 0, y: y + 12 }, route.route));
    svg.append(svgEl("rect", { class: "bar p99", x: labelWidth, y, height: 7, width: Math.max(1, scale(route.window.p99Ms)) }));
    svg.append(svgEl("rect", { class: "bar", x: labelWidth, y: y + 8, height: 7, width: Math.max(1, scale(route.window.p95Ms)) }));
    svg.append(svgEl("text", { x: labelWidth + scale(route.window.p99Ms) + 4, y: y + 12 }, `p95 ${ms(route.window.p95Ms)} · p99 ${ms(route.window.p99Ms)}`));
  });
}

function kpi(container, title, value, target, ok) {
  const tile = el("div", { class: `kpi ${ok === null ? "" : ok ? "ok" : "bad"}`, "data-kpi": title });
  tile.append(el("div", {}, title), el("div", { class: "value" }, value), el("div", { class: "target" }, `target ${target}`));
  container.append(tile);
}

function drawKpis(stats, health) {
  const container = document.getElementById("kpis");
  container.replaceChildren();
  const p95 = stats.allRoutes.window.count > 0 ? stats.allRoutes.window.p95Ms : null;
  kpi(container, "p95 latency (5 min)", ms(p95), "< 100 ms", p95 === null ? null : p95 < 100);
  const kinds = health.cache.kinds;
  const requests = kinds.reduce((sum, kind) => sum + kind.requests, 0);
  const hits = kinds.reduce((sum, kind) => sum + kind.hitRate * kind.requests, 0);
  const hitRate = requests > 0 ? hits / requests : null;
  kpi(container, "cache hit rate", pct(hitRate), "> 70%", hitRate === null ? null : hitRate > 0.7);
  const slow = stats.slow;
  kpi(container, "slow queries", `${pct(slow.slowRate)} (${slow.slowCalls} of ${slow.calls})`, `< 1% (≥ ${slow.thresholdMs} ms)`, slow.slowRate < 0.01);
  const use = health.pool.max > 0 ? health.pool.inUse / health.pool.max : 0;
  kpi(container, "pool use", `${health.pool.inUse} of ${health.pool.max} (${pct(use)})`, "< 80%", use < 0.8);
  const wait = health.pool.acquireWait.window;
  const waited = `${health.pool.waiters} waiting, p95 ${ms(wait.count > 0 ? wait.p95Ms : null)} (5 min)`;
  const timeouts = health.pool.acquireTimeouts;
  kpi(container, "pool waits", waited, `no timeouts (${timeouts} since start)`, timeouts === 0);
}

function drawStats(stats, now) {
  const total = stats.routes.reduce((sum, route) => sum + route.sinceStart.count, 0);
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    throughput.push(seconds > 0 ? Math.max(0, total - previous.total) / seconds : 0);
    if (throughput.length > HISTORY) throughput.shift();
  }
  previous = { at: now, total };
  lineChart(document.getElementById("chart-throughput"), throughput);

  const routes = stats.routes.filter((route) => route.window.count > 0).sort((a, b) => b.window.p99Ms - a.window.p99Ms);
  routeBars(document.getElementById("chart-routes"), routes);
  fillTable(document.getElementById("table-routes"), [
    ["route", (r) => r.route], ["requests", (r) => r.window.count, true], ["errors", (r) => r.window.errors, true],
    ["p50", (r) => ms(r.window.p50Ms), true], ["p95", (r) => ms(r.window.p95Ms), true],
    ["p99", (r) => ms(r.window.p99Ms), true], ["max", (r) => ms(r.window.maxMs), true],
  ], routes, "no requests in the last 5 minutes");

  const queries = stats.queries.filter((query) => query.window.count > 0).sort((a, b) => b.window.p99Ms - a.window.p99Ms);
  fillTable(document.getElementById("table-queries"), [
    ["query", (q) => q.name], ["calls", (q) => q.window.count, true], ["errors", (q) => q.window.errors, true],
    ["p50", (q) => ms(q.window.p50Ms), true], ["p95", (q) => ms(q.window.p95Ms), true],
    ["p99", (q) => ms(q.window.p99Ms), true], ["max", (q) => ms(q.window.maxMs), true],
  ], queries, "no queries in the last 5 minutes");

  fillTable(document.getElementById("table-slow"), [
    ["query", (c) => c.query], ["duration", (c) => ms(c.durationMs), true], ["rows", (c) => c.rows, true],
    ["failed", (c) => (c.failed ? "yes" : "no")], ["at", (c) => when(c.recordedAt)],
  ], stats.recentSlowCalls, `no call reached ${stats.slow.thresholdMs} ms`);
}

function drawHealth(health) {
  poolUse.push(health.pool.inUse);
  if (poolUse.length > HISTORY) poolUse.shift();
  lineChart(document.getElementById("chart-pool"), poolUse, health.pool.max);

  const tiers = health.cache.kinds.flatMap((kind) => [
    { kind: kind.kind, tier: "local", hits: kind.localHits, misses: kind.localMisses, rate: kind.localHitRate },
    { kind: kind.kind, tier: "shared", hits: kind.sharedHits, misses: kind.sharedMisses, rate: kind.sharedHitRate },
  ]).filter((row) => row.hits + row.misses > 0);
  fillTable(document.getElementById("table-cache"), [
    ["kind", (r) => r.kind], ["tier", (r) => r.tier], ["hits", (r) => r.hits, true],
    ["misses", (r) => r.misses, true], ["hit rate", (r) => pct(r.rate), true],
  ], tiers, "no cache lookups yet");

  const details = health.details || { materializedViews: [], jobs: [] };
  fillTable(document.getElementById("table-views"), [
    ["materialized view", (v) => v.name], ["populated", (v) => (v.populated ? "yes" : "no")],
    ["last refresh", (v) => when(v.lastRefreshAt)], ["took", (v) => ms(v.lastRefreshMs), true],
  ], details.materializedViews, "no materialized views");
  fillTable(document.getElementById("table-jobs"), [
    ["job", (j) => j.job], ["outcome", (j) => j.outcome], ["last run", (j) => when(j.lastStartedAt)],
    ["took", (j) => ms(j.durationMs), true], ["runs", (j) => j.runs, true],
  ], details.jobs, "no job has run yet");
}

function drawIndexes(unused, duplicate, invalid) {
  const rows = [
    ...unused.indexes.map((entry) => ({ what: "unused", index: entry.index.index, table: entry.index.table, note: entry.suggestion })),
    ...duplicate.indexes.map((entry) => ({ what: "duplicate", index: entry.index, table: entry.table, note: `covered by ${entry.coveredBy}` })),
    ...invalid.indexes.map((entry) => ({ what: "invalid", index: entry.index, table: entry.table, note: entry.definition })),
  ];
  fillTable(document.getElementById("table-indexes"), [
    ["finding", (r) => r.what], ["index", (r) => r.index], ["table", (r) => r.table], ["", (r) => r.note, false, true],
  ], rows, `no unused (≥ ${bytes(unused.minBytes)}), duplicate or invalid index`);
}

function drawTables(tables) {
  fillTable(document.getElementById("table-tables"), [
    ["table", (t) => t.table.table], ["live rows", (t) => t.table.liveRows, true], ["dead rows", (t) => t.table.deadRows, true],
    ["table", (t) => bytes(t.table.tableBytes), true], ["indexes", (t) => bytes(t.table.indexBytes), true],
    ["TOAST", (t) => bytes(t.table.toastBytes), true],
    ["last (auto)vacuum", (t) => when(t.table.lastAutovacuum || t.table.lastVacuum)],
    ["hint", (t) => t.missingIndexHint || "", false, true],
  ], tables.tables, "no tables");
}

async function refresh() {
  const now = Date.now();
  try {
    const [stats, health, tables, unused, duplicate, invalid] = await Promise.all([
      getJson("/api/monitor/queries?type=stats"),
      getJson("/api/health/database?detailed=true"),
      getJson("/api/monitor/queries?type=tables"),
      getJson("/api/monitor/queries?type=unused"),
      getJson("/api/monitor/queries?type=duplicate"),
      getJson("/api/monitor/queries?type=invalid"),
    ]);
    drawKpis(stats, health);
    drawStats(stats, now);
    drawHealth(health);
    drawIndexes(unused, duplicate, invalid);
    drawTables(tables);
    document.getElementById("updated").textContent = `updated ${new Date(now).toLocaleTimeString()}`;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (error) {
    document.getElementById("updated").textContent = `update failed: ${error.message}`;
  }
  setTimeout(refresh, PERIOD_MS);
}

refresh();
