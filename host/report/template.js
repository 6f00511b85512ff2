// The page's script (qallow report, docs/report.md): draws the embedded
// data with the inlined Chart.js.  Every text from the data goes in through
// textContent, never as HTML.  When done it sets window.qallowReport =
// {charts, points} (and #qallow-status's data attributes) for tests.
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('qallow-data').textContent);
  const main = document.getElementById('qallow-main');
  const nav = document.getElementById('qallow-nav');
  const palette = ['#1565c0', '#c62828', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#4e342e',
                   '#283593', '#9e9d24', '#00695c', '#5d4037', '#37474f', '#d84315', '#1b5e20', '#880e4f'];
  const count = { charts: 0, points: 0 };

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'cls') e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.appendChild(typeof k === 'string' ? document.createTextNode(k) : k);
    return e;
  }

  function section(id, title) {
    const s = el('section', { id: id }, el('h2', { text: title }));
    main.appendChild(s);
    nav.appendChild(el('a', { href: '#' + id, text: title }));
    return s;
  }

  function fmt(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(+v.toPrecision(7));
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function kvTable(obj, keys) {
    const t = el('table', { cls: 'kv' });
    for (const k of keys || Object.keys(obj)) {
      if (!(k in obj)) continue;
      t.appendChild(el('tr', null, el('th', { text: k }), el('td', { text: fmt(obj[k]) })));
    }
    return t;
  }

  function rowsTable(header, rows) {
    const t = el('table');
    t.appendChild(el('tr', null, ...header.map((h) => el('th', { text: h }))));
    for (const r of rows) t.appendChild(el('tr', null, ...r.map((c) => el('td', { text: fmt(c) }))));
    return el('div', { cls: 'scroll' }, t);
  }

  // Ethics failure buckets shaded and reload ticks marked on every tick chart.
  const failSpans = mergeSpans((data.ethics && data.ethics.buckets) || []);
  const reloadTicks = ((data.summary && data.summary.reload && data.summary.reload.events) || [])
    .map((e) => e.after_tick).filter((t) => typeof t === 'number').slice(0, 500);

  function mergeSpans(buckets) {
    const out = [];
    for (const [first, last] of buckets) {
      const prev = out[out.length - 1];
      if (prev && first <= prev[1] + 1) prev[1] = last;
      else out.push([first, last]);
    }
    return out.slice(0, 5000);
  }

  const marks = {
    id: 'qallowMarks',
    beforeDatasetsDraw(chart, args, opts) {
      const x = chart.scales.x, a = chart.chartArea, ctx = chart.ctx;
      if (!x || !opts || (!opts.spans && !opts.ticks)) return;
      ctx.save();
      ctx.fillStyle = 'rgba(198, 40, 40, 0.18)';
      for (const [first, last] of opts.spans || []) {
        const x0 = Math.max(a.left, x.getPixelForValue(first - 0.5));
        const x1 = Math.min(a.right, x.getPixelForValue(last + 0.5));
        if (x1 >= a.left && x0 <= a.right) ctx.fillRect(x0, a.top, Math.max(1, x1 - x0), a.bottom - a.top);
      }
      ctx.strokeStyle = 'rgba(21, 101, 192, 0.7)';
      ctx.setLineDash([4, 3]);
      for (const t of opts.ticks || []) {
        const px = x.getPixelForValue(t);
        if (px < a.left || px > a.right) continue;
        ctx.beginPath();
        ctx.moveTo(px, a.top);
        ctx.lineTo(px, a.bottom);
        ctx.stroke();
      }
      ctx.restore();
    },
  };

  function points(s) {
    return s.x.map((x, i) => ({ x: x, y: s.y[i] === null ? NaN : s.y[i] }));
  }

  // One chart; `lines` are {label, x, y}.  Options: xTitle, wide, marks, scatter.
  function chart(parent, title, lines, o) {
    o = o || {};
    const canvas = el('canvas');
    const box = el('div', { cls: o.wide ? 'chart wide' : o.strip ? 'strip' : 'chart' }, canvas);
    parent.appendChild(el('div', { cls: 'card' }, el('h4', { text: title }), box));
    const datasets = lines.map((l, i) => {
      const n = l.x.length;
      count.points += n;
      const color = o.color || palette[i % palette.length];
      return {
        label: l.label, data: points(l), borderColor: color, backgroundColor: color, borderWidth: 1.2,
        pointRadius: o.scatter ? 3 : n <= 60 ? 2 : 0, showLine: !o.scatter, spanGaps: false, tension: 0,
        // A held series (measurements.csv): a value holds until the next
        // point, so the line steps there instead of sloping towards it.
        stepped: l.held ? 'before' : false,
      };
    });
    const config = {
      type: 'line',
      data: { datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: 'nearest', intersect: false, axis: 'x' },
        scales: {
          x: { type: 'linear', min: o.range ? o.range[0] : undefined, max: o.range ? o.range[1] : undefined,
               title: { display: !!o.xTitle, text: o.xTitle || '' } },
          y: { type: 'linear' },
        },
        plugins: { legend: { display: lines.length > 1, labels: { boxWidth: 10 } }, qallowMarks: o.marks || {} },
      },
      plugins: [marks],
    };
    new Chart(canvas.getContext('2d'), config);
    count.charts += 1;
  }

  function instanceOf(name) {
    const dot = name.indexOf('.');
    return dot < 0 ? name : name.slice(0, dot);
  }

  function groupByInstance(series) {
    const groups = new Map();
    for (const s of series) {
      const k = instanceOf(s.name);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(s);
    }
    return groups;
  }

  const tickMarks = { spans: failSpans, ticks: reloadTicks };

  function seriesCharts(parent, series, marksOn, held) {
    for (const [instance, list] of groupByInstance(series)) {
      parent.appendChild(el('h3', { text: instance }));
      const grid = el('div', { cls: 'grid' });
      parent.appendChild(grid);
      for (const s of list) chart(grid, s.name, [{ label: s.name, x: s.x, y: s.y, held: held }], { xTitle: 'tick', marks: marksOn ? tickMarks : null });
    }
  }

  function sampledNote(t) {
    const sampled = t.rows > data.max_points;
    const files = t.rotated_files ? t.file + ' with the ' + t.rotated_files + ' rotated files before it' : t.file;
    return el('p', { cls: 'note', text: files + ': ' + t.rows + ' rows, ticks ' + t.first_tick + '..' + t.last_tick +
      (sampled ? '; each series drawn as the minimum and maximum of ' + Math.floor(data.max_points / 2) +
        ' buckets of ticks (at most ' + data.max_points + ' points)' : '; every row drawn') +
      '. Shaded: ticks with an ethics failure; dashed: hot reloads.' });
  }

  function summarySection() {
    const s = section('summary', 'Summary');
    const sum = data.summary;
    if (!sum) { s.appendChild(el('p', { cls: 'note', text: 'No summary.json in this directory (the run may not have ended).' })); return; }
    s.appendChild(kvTable(sum, ['stopped_by', 'error', 'ticks', 'ticks_requested', 'trials', 'seed', 'threads',
      'wall_seconds', 'ticks_per_second', 'first_tick_ms', 'fault_policy', 'param_changes', 'qallow_version', 'abi', 'plugin_dir']));
    if (sum.config) s.appendChild(el('p', { cls: 'note', text: 'config: ' + fmt(sum.config.file) + ' (' + fmt(sum.config.digest) + ')' }));
    if (Array.isArray(sum.faults) && sum.faults.length) {
      s.appendChild(el('h3', { text: 'Faults (' + sum.faults.length + ')' }));
      s.appendChild(el('pre', { text: JSON.stringify(sum.faults, null, 2) }));
    }
    if (Array.isArray(sum.plugins)) {
      s.appendChild(el('h3', { text: 'Plugins' }));
      s.appendChild(rowsTable(['instance', 'plugin', 'kind', 'version', 'disabled', 'sha256'],
        sum.plugins.map((p) => [p.instance, p.plugin, p.kind, p.version, p.disabled, String(p.sha256 || '').slice(0, 16)])));
    }
  }

  function ethicsSection() {
    const s = section('ethics', 'Ethics');
    const e = data.ethics, sum = data.summary && data.summary.ethics;
    if (sum) s.appendChild(kvTable(sum));
    const p = el('p');
    p.appendChild(el('span', { cls: e.count ? 'fail' : 'ok', text: e.count + ' tick(s) failed' }));
    p.appendChild(document.createTextNode(' in telemetry.csv (a tick fails when any of ' +
      (e.columns.length ? e.columns.join(', ') : '(no pass column)') + ' is 0).'));
    s.appendChild(p);
    if (data.trials.length) {
      const inTrials = data.trials.reduce((n, t) => n + t.failures, 0);
      s.appendChild(el('p', { cls: inTrials ? 'fail' : 'ok', text: inTrials + ' tick(s) failed across the ' +
        data.trials.length + ' trial(s): ' + data.trials.map((t) => t.name + ' ' + t.failures).join(', ') }));
    }
    if (e.count) {
      const strip = el('div', { cls: 'grid' });
      s.appendChild(strip);
      chart(strip, 'failing ticks per bucket', [{ label: 'failures', x: e.buckets.map((b) => b[0]), y: e.buckets.map((b) => b[2]) }],
        { xTitle: 'tick', scatter: true, strip: true, color: '#c62828',
          range: [data.telemetry.first_tick, data.telemetry.last_tick] });
      s.appendChild(el('details', null, el('summary', { text: 'Failing ticks' + (e.ticks_truncated ? ' (the first ' + e.ticks.length + ')' : '') }),
        el('p', { text: e.ticks.join(', ') })));
    }
  }

  function signalsSection() {
    const s = section('signals', 'Signals');
    if (!data.telemetry.rows) {
      s.appendChild(el('p', { cls: 'note', text: 'telemetry.csv has no rows' +
        (data.trials.length ? ': a Lua experiment\'s ticks are in its trials (below).' : '.') }));
      return;
    }
    s.appendChild(sampledNote(data.telemetry));
    seriesCharts(s, data.telemetry.series, true);
  }

  function energySection() {
    const m = data.measurements, en = data.summary && data.summary.energy;
    if (!m && !en) return;
    const s = section('energy', 'Energy and measurements');
    if (en) s.appendChild(kvTable(en));
    if (!m) return;
    s.appendChild(sampledNote(m));
    if (m.derived.length) {
      const grid = el('div', { cls: 'grid' });
      s.appendChild(el('h3', { text: 'cumulative' }));
      s.appendChild(grid);
      for (const d of m.derived) chart(grid, d.name, [{ label: d.name, x: d.x, y: d.y }], { xTitle: 'tick', marks: tickMarks });
    }
    seriesCharts(s, m.series, true, m.held);
  }

  function reloadSection() {
    const r = data.summary && data.summary.reload;
    if (!r) return;
    const s = section('reload', 'Hot reload');
    const counts = Object.assign({}, r);
    delete counts.events;
    s.appendChild(kvTable(counts));
    const events = Array.isArray(r.events) ? r.events : [];
    if (!events.length) { s.appendChild(el('p', { cls: 'note', text: 'No reload events.' })); return; }
    const cols = ['after_tick', 'event', 'instance', 'plugin', 'old_version', 'new_version', 'sha256', 'detail'];
    s.appendChild(rowsTable(cols, events.map((ev) => cols.map((c) => c === 'sha256' ? String(ev[c] || '').slice(0, 16) : ev[c]))));
  }

  function isNumber(c) { return c !== '' && !isNaN(Number(c)); }

  // The column a sweep varies: the first whose values all differ and move one way.
  function sweepColumn(x) {
    for (let c = 0; c < x.header.length; ++c) {
      const v = x.rows.map((r) => r[c]);
      if (!v.length || !v.every(isNumber)) continue;
      const n = v.map(Number);
      let up = true, down = true;
      for (let i = 1; i < n.length; ++i) { up = up && n[i] > n[i - 1]; down = down && n[i] < n[i - 1]; }
      if (up || down) return c;
    }
    return 0;
  }

  function experimentCharts(grid, x, xc) {
    grid.textContent = '';
    const xs = x.rows.map((r) => Number(r[xc]));
    x.header.forEach((h, c) => {
      if (c === xc || !x.rows.length || !x.rows.every((r) => isNumber(r[c]) || /^(nan|-?inf)$/i.test(r[c]))) return;
      const order = xs.map((v, i) => i).sort((a, b) => xs[a] - xs[b]);
      chart(grid, h + ' against ' + x.header[xc], [{ label: h, x: order.map((i) => xs[i]), y: order.map((i) => Number(x.rows[i][c])) }],
        { xTitle: x.header[xc] });
    });
  }

  function experimentSection() {
    const x = data.experiment;
    if (!x) return;
    const s = section('experiment', 'Experiment');
    s.appendChild(el('p', { cls: 'note', text: 'experiment.csv: ' + x.total_rows + ' row(s), one per qallow.emit' +
      (x.total_rows > x.rows.length ? ' (the first ' + x.rows.length + ' shown)' : '') }));
    s.appendChild(rowsTable(x.header, x.rows));
    const xc = sweepColumn(x);
    const grid = el('div', { cls: 'grid' });
    s.appendChild(el('h3', { text: 'Numeric columns against ' + x.header[xc] }));
    s.appendChild(grid);
    experimentCharts(grid, x, xc);
  }

  function trialsSection() {
    if (!data.trials.length) return;
    const s = section('trials', 'Trials');
    s.appendChild(el('p', { cls: 'note', text: data.trials.length + ' trial(s): ' + data.trials.map((t) => t.name + ' (' + t.telemetry.rows +
      ' ticks, ' + t.failures + ' ethics failures)').join(', ') + '. One chart per signal, one line per trial.' }));
    const bySignal = new Map();
    for (const t of data.trials) {
      const held = new Set(t.measurements && t.measurements.held ? t.measurements.series : []);
      const all = t.telemetry.series.concat(t.measurements ? t.measurements.series.concat(t.measurements.derived) : []);
      for (const sr of all) {
        if (!bySignal.has(sr.name)) bySignal.set(sr.name, []);
        bySignal.get(sr.name).push({ label: t.name, x: sr.x, y: sr.y, held: held.has(sr) });
      }
    }
    for (const [instance, names] of groupByInstance([...bySignal.keys()].map((n) => ({ name: n })))) {
      s.appendChild(el('h3', { text: instance }));
      const grid = el('div', { cls: 'grid' });
      s.appendChild(grid);
      for (const n of names) chart(grid, n.name, bySignal.get(n.name), { xTitle: 'tick' });
    }
  }

  function rawSection() {
    const s = section('raw', 'summary.json');
    if (!data.summary) { s.appendChild(el('p', { cls: 'note', text: 'none' })); return; }
    s.appendChild(el('details', null, el('summary', { text: 'The whole summary.json' }),
      el('pre', { text: JSON.stringify(data.summary, null, 2) })));
  }

  document.getElementById('qallow-meta').textContent = data.run_dir + ' — report made ' + data.generated +
    (data.summary ? ' — stopped by ' + fmt(data.summary.stopped_by) + ' after ' + fmt(data.summary.ticks) + ' ticks' : '');
  for (const part of [summarySection, ethicsSection, signalsSection, energySection, reloadSection, experimentSection,
                      trialsSection, rawSection]) {
    try { part(); } catch (err) { main.appendChild(el('p', { cls: 'fail', text: part.name + ': ' + err })); }
  }
  window.qallowReport = { charts: count.charts, points: count.points };
  const status = document.getElementById('qallow-status');
  status.setAttribute('data-charts', String(count.charts));
  status.setAttribute('data-points', String(count.points));
  status.setAttribute('data-done', '1');
})();
