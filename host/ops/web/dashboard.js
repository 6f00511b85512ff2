// The Qallow node dashboard (docs/dashboard.md).  Reads three things from the
// node that served it, all read-only: /api/stream (server-sent events: the
// signal names, then one point per 100 ms), /api/status every 2 s, and on a
// datacentre /api/fleet and the fleet store's /fleet/rows.
// window.qallowDashboard says what has been drawn, for the browser tests.
'use strict';

const Q = (window.qallowDashboard = { points: 0, history: 0, charts: 0, fleetNodes: [], fleetPoints: 0, status: 0 });
const KEEP = 800; // points per live chart (the history sends at most 512)
const COLORS = ['#1d3557', '#e63946', '#2a9d8f', '#f4a261', '#6a4c93', '#8ab17d', '#e9c46a', '#457b9d', '#bc4749'];
const live = []; // {chart, slots}
let chosenNode = null;

const $ = (id) => document.getElementById(id);
function text(id, v) { $(id).textContent = v; }
function num(v, digits = 4) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(digits + 2));
}
function problem(msg) { const p = $('problem'); p.hidden = !msg; p.textContent = msg || ''; }
async function getJSON(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(url + ': HTTP ' + r.status + ' ' + (await r.text()).trim());
  return r.json();
}
function rows(tbodyParent, list) { // list of arrays of cells (strings)
  const body = $(tbodyParent).querySelector('tbody');
  body.replaceChildren(...list.map((cells) => {
    const tr = document.createElement('tr');
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    return tr;
  }));
  return body;
}

// One chart per instance, one line per signal of it.
function groups(names) {
  const by = new Map();
  names.forEach((n, slot) => {
    const inst = n.includes('.') ? n.slice(0, n.indexOf('.')) : n;
    if (!by.has(inst)) by.set(inst, []);
    by.get(inst).push({ name: n.slice(inst.length + 1) || n, slot });
  });
  return by;
}
function chart(container, title, series) {
  const box = document.createElement('div');
  box.className = 'chart';
  box.innerHTML = '<h3></h3><div class="box"><canvas></canvas></div>';
  box.querySelector('h3').textContent = title;
  container.appendChild(box);
  return new Chart(box.querySelector('canvas'), {
    type: 'line',
    data: { labels: [], datasets: series.map((s, i) => ({ label: s, data: [], borderColor: COLORS[i % COLORS.length],
      backgroundColor: COLORS[i % COLORS.length], borderWidth: 1.5, pointRadius: 0, spanGaps: false,
      hidden: s === 'ops' })) }, // units of work dwarf the model's 0..1 signals: one click on the legend shows them
    options: { animation: false, responsive: true, maintainAspectRatio: false, normalized: true,
      scales: { x: { ticks: { maxTicksLimit: 6 } } }, plugins: { legend: { labels: { boxWidth: 10 } } } },
  });
}

function onSignals(names) {
  for (const l of live) l.chart.destroy();
  live.length = 0;
  $('charts').replaceChildren();
  for (const [inst, sigs] of groups(names))
    live.push({ chart: chart($('charts'), inst, sigs.map((s) => s.name)), slots: sigs.map((s) => s.slot) });
  Q.charts = live.length;
}
// Points are taken as they come (10 a second) and drawn twice a second: a
// busy or slow machine's page stays responsive.
let dirty = false;
function onTick(p) {
  text('tick', p.tick); text('trial', p.trial); text('tps', num(p.tps, 3));
  for (const { chart: c, slots } of live) {
    c.data.labels.push(p.tick);
    slots.forEach((slot, j) => c.data.datasets[j].data.push(p.v[slot]));
    if (c.data.labels.length > KEEP) {
      c.data.labels.shift();
      for (const d of c.data.datasets) d.data.shift();
    }
  }
  dirty = true;
  Q.points++;
}
setInterval(() => {
  if (!dirty) return;
  dirty = false;
  for (const { chart: c } of live) c.update('none');
}, 500);
// The trial so far, sent once when the stream opens.
function onHistory(rows) {
  for (const { chart: c, slots } of live) {
    c.data.labels = rows.map((r) => r[0]);
    slots.forEach((slot, j) => { c.data.datasets[j].data = rows.map((r) => r[slot + 1]); });
    c.update('none');
  }
  Q.history = rows.length;
}
function stream() {
  const es = new EventSource('/api/stream');
  es.addEventListener('open', () => { $('live').className = 'live on'; text('live', 'live'); });
  es.addEventListener('error', () => { $('live').className = 'live off'; text('live', 'stream closed, retrying'); });
  es.addEventListener('signals', (e) => onSignals(JSON.parse(e.data).names));
  es.addEventListener('history', (e) => onHistory(JSON.parse(e.data).rows));
  es.addEventListener('tick', (e) => onTick(JSON.parse(e.data)));
}

function showStatus(s) {
  if (s.node && s.node.id) { text('node-id', s.node.id + ' (' + s.node.role + ')'); document.title = 'Qallow ' + s.node.id; }
  $('state').className = 'state ' + s.state; text('state', s.state);
  text('tick', s.tick); text('trial', s.trial); text('tps', num(s.ticks_per_second, 3));
  text('ethics-pass', s.ethics.pass); text('ethics-fail', s.ethics.fail); text('ethics-score', num(s.ethics.score));
  text('joules', s.energy ? num(s.energy.joules_total) : 'no energy instance');
  text('jop', s.energy ? num(s.energy.j_per_op) : '–');
  const r = s.reload || {};
  text('reloads', r.reloaded ?? 0); text('rollbacks', r.rolled_back ?? 0);
  text('quarantined', r.quarantined ?? 0); text('refused', r.refused ?? 0);
  rows('events', (r.events || []).slice(-10).reverse().map((e) => [e.after_tick ?? '', e.kind ?? '', e.detail ?? e.file ?? '']));
  const ledger = (s.ledger && s.ledger.last) || [];
  rows('ledger', ledger.slice().reverse().map((e) => e ? [e.seq ?? '', e.tick ?? '', e.kind ?? '', num(e.ethics_score)] : ['?', '', 'unreadable line', '']));
  const inst = (s.params && s.params.instances) || [];
  rows('params', inst.map((i) => [i.name ?? '', (i.plugin ?? '') + ' ' + (i.version ?? ''), JSON.stringify(i.params ?? {})]))
    .querySelectorAll('td:nth-child(3)').forEach((td) => td.classList.add('params'));
  $('fleet').hidden = !s.fleet;
  Q.status++;
}

async function showFleet() {
  const c = await getJSON('/api/fleet');
  const nodes = Object.entries(c.nodes || {});
  const body = rows('fleet-table', nodes.map(([id, n]) => [id, n.role, n.online ? 'online' : 'dead', n.last_seen || '–',
    num(n.cycle_ms), n.last_tick, n.outbox ?? '–', typeof n.rejected === 'number' ? n.rejected : JSON.stringify(n.rejected)]));
  [...body.children].forEach((tr, i) => {
    const id = nodes[i][0];
    if (!nodes[i][1].online) tr.classList.add('dead');
    if (id === chosenNode) tr.classList.add('chosen');
    tr.addEventListener('click', () => { chosenNode = id; showFleetNode(); });
  });
  const by = (c.rejected && c.rejected.by_reason) || {};
  text('rejections', Object.keys(by).length ? Object.entries(by).map(([k, v]) => k + ' ' + v).join(', ') : 'none');
  Q.fleetNodes = nodes.map(([id]) => id);
  if (!chosenNode && nodes.length) chosenNode = nodes[0][0];
  if (chosenNode) await showFleetNode(nodes.find(([id]) => id === chosenNode)?.[1]);
}
const fleetCharts = [];
async function showFleetNode(n) {
  const from = n && n.last_tick > KEEP ? n.last_tick - KEEP : 1;
  const r = await getJSON('/fleet/rows?node=' + encodeURIComponent(chosenNode) + '&ticks=' + from + ':&limit=' + KEEP * 2);
  text('fleet-node', chosenNode + ' (' + r.rows.length + ' rows)');
  for (const c of fleetCharts) c.destroy();
  fleetCharts.length = 0;
  $('fleet-charts').replaceChildren();
  for (const [inst, sigs] of groups(r.signals)) {
    const c = chart($('fleet-charts'), chosenNode + ': ' + inst, sigs.map((s) => s.name));
    c.data.labels = r.rows.map((row) => row.tick);
    sigs.forEach((s, j) => { c.data.datasets[j].data = r.rows.map((row) => row.values[s.slot]); });
    c.update('none');
    fleetCharts.push(c);
  }
  Q.fleetPoints = r.rows.length;
}

async function refresh() {
  try {
    const s = await getJSON('/api/status');
    showStatus(s);
    if (s.fleet) await showFleet();
    problem('');
  } catch (e) {
    problem(String(e.message || e));
  }
}

if (typeof Chart === 'undefined') problem('Chart.js did not load from /vendor/chart.min.js: install Debian\'s libjs-chart.js on the node');
else stream();
refresh();
setInterval(refresh, 2000);
