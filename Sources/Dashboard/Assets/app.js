// The KafkaSync dashboard: plain DOM over the JSON API of docs/openapi.yaml and its Server-Sent Events.
// Server data only ever reaches the page through textContent and attributes: names are hostile.
// Every list is capped so that the page runs for hours without a reload.

const STATUSES = ['queued', 'running', 'retrying', 'completed', 'failed', 'dead-lettered', 'skipped-duplicate'];
const EVENT_TYPES = ['started', 'progress', 'completed', 'skipped', 'retrying', 'dead_lettered'];
const LIMITS = { running: 200, queue: 50, dlq: 500, history: 1000, historyPage: 50 };
const TOKEN_KEY = 'kafkasync.token';

const $ = (id) => document.getElementById(id);

// ---- small helpers ------------------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-')) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function bytes(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function duration(seconds) {
  if (typeof seconds !== 'number' || !isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s % 3600 / 60)).padStart(2, '0')} min`;
}

function when(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  return isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

// ---- the token: from #token=… once, then sessionStorage; never shown --------------------------------------

const memory = {};
const storage = {
  get(key) { try { return sessionStorage.getItem(key); } catch { return memory[key] ?? null; } },
  set(key, value) { try { sessionStorage.setItem(key, value); } catch { memory[key] = value; } },
};

function tokenFromFragment() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  try { storage.set(TOKEN_KEY, decodeURIComponent(match[1])); } catch { storage.set(TOKEN_KEY, match[1]); }
  history.replaceState(null, '', location.pathname + location.search);
}

const token = () => storage.get(TOKEN_KEY) || '';

// ---- the status line: one problem per source, cleared when that source works again -------------------------

const problems = new Map();

function report(source, error) {
  if (error) problems.set(source, `${source}: ${error.message || error}`);
  else problems.delete(source);
  $('status-line').textContent = [...problems.values()].join(' · ');
}

// ---- the API ------------------------------------------------------------------------------------------------

class APIError extends Error {
  constructor(status, message, reason) {
    super(reason ? `${message} (${reason})` : message);
    this.status = status;
    this.reason = reason;
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new APIError(0, 'the server does not answer');
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    if (response.status === 401) $('token-form').hidden = false;
    const error = data && typeof data === 'object' ? data.error : null;
    throw new APIError(response.status, (error && error.message) || `HTTP ${response.status}`, error && error.reason);
  }
  return data || {};
}

// A loader coalesces triggers: one request in flight, at most one queued, and at least `gap` ms between starts.
function loader(name, load, gap = 0) {
  let running = false, again = false, timer = null, last = 0;
  async function run() {
    if (running) { again = true; return; }
    running = true;
    last = Date.now();
    try { await load(); report(name, null); } catch (error) { report(name, error); }
    running = false;
    if (again) { again = false; trigger(); }
  }
  function trigger() {
    if (timer !== null) return;
    timer = setTimeout(() => { timer = null; run(); }, Math.max(0, last + gap - Date.now()));
  }
  return trigger;
}

// ---- counts and running transfers ---------------------------------------------------------------------------

const runningRows = new Map(); // job id → { row, progress, text, rate, eta, attempt, sample }

function runningRow(jobID) {
  let entry = runningRows.get(jobID);
  if (entry) return entry;
  if (runningRows.size >= LIMITS.running) return null;
  entry = {
    name: el('td'), remote: el('td'), progress: el('progress'), text: el('span', { class: 'muted' }),
    rate: el('td'), eta: el('td'), attempt: el('td'), sample: null, rateValue: null, total: null,
  };
  entry.row = el('tr', { 'data-job-id': jobID }, entry.name, entry.remote,
    el('td', { class: 'progress' }, entry.progress, entry.text), entry.rate, entry.eta, entry.attempt);
  $('running').tBodies[0].append(entry.row);
  runningRows.set(jobID, entry);
  $('running-empty').hidden = true;
  return entry;
}

function removeRunning(jobID) {
  const entry = runningRows.get(jobID);
  if (!entry) return;
  entry.row.remove();
  runningRows.delete(jobID);
  $('running-empty').hidden = runningRows.size > 0;
}

// Fills a running row from a RunningTransfer or an Event (progress events carry bytes only: the total is the one
// seen last); the rate is the server's or measured between events.
function updateRunning(t, time) {
  if (!t || typeof t.job_id !== 'string') return;
  const entry = runningRow(t.job_id);
  if (!entry) return;
  if (t.name !== undefined) entry.name.textContent = t.name;
  if (t.remote !== undefined) entry.remote.textContent = t.remote;
  if (t.attempt !== undefined) entry.attempt.textContent = String(t.attempt);
  let done = typeof t.bytes === 'number' ? t.bytes : null;
  // The store's row (a status fetch, no time) may lag behind the events: never move the bar back for it.
  if (done !== null && time === null && entry.sample && entry.sample.bytes > done) done = entry.sample.bytes;
  if (typeof t.total === 'number' && t.total > 0) entry.total = t.total;
  const total = entry.total;
  if (done !== null) {
    entry.progress.dataset.bytes = String(done);
    if (total !== null) { entry.progress.max = total; entry.progress.value = Math.min(done, total); }
    else entry.progress.removeAttribute('value');
    entry.text.textContent = total !== null ? ` ${bytes(done)} of ${bytes(total)}` : ` ${bytes(done)}`;
    entry.progress.setAttribute('aria-label', `${entry.name.textContent}: ${entry.text.textContent.trim()}`);
  }
  if (typeof t.rate === 'number') entry.rateValue = t.rate;
  else if (done !== null && time) {
    const now = Date.parse(time);
    const previous = entry.sample;
    if (previous && now > previous.time && done >= previous.bytes) {
      const measured = (done - previous.bytes) / ((now - previous.time) / 1000);
      entry.rateValue = entry.rateValue === null ? measured : 0.7 * entry.rateValue + 0.3 * measured;
    }
    if (!isNaN(now)) entry.sample = { time: now, bytes: done };
  }
  entry.rate.textContent = entry.rateValue === null ? '–' : `${bytes(entry.rateValue)}/s`;
  let eta = typeof t.eta_seconds === 'number' ? t.eta_seconds : null;
  if (eta === null && total !== null && done !== null && entry.rateValue > 0) eta = (total - done) / entry.rateValue;
  entry.eta.textContent = duration(eta);
}

const refreshStatus = loader('status', async () => {
  const status = await api('/api/status');
  const counts = status.counts || {};
  for (const name of STATUSES) {
    const cell = $(`count-${name}`);
    if (cell) cell.textContent = typeof counts[name] === 'number' ? String(counts[name]) : '–';
  }
  const running = Array.isArray(status.running) ? status.running : [];
  const seen = new Set(running.map((t) => t && t.job_id));
  for (const jobID of [...runningRows.keys()]) if (!seen.has(jobID)) removeRunning(jobID);
  for (const t of running) updateRunning(t, null);
  const uploads = Array.isArray(status.uploads) ? status.uploads : [];
  uploading = uploads.length > 0;
  $('uploads-block').hidden = !uploading;
  $('uploads').tBodies[0].replaceChildren(...uploads.slice(0, LIMITS.running).map(uploadRow));
}, 2000);

// Uploads send no events (parts are acknowledged in the store): while any is unfinished, the status is polled.
let uploading = false;

function uploadRow(u) {
  const size = typeof u.size === 'number' ? u.size : 0;
  const done = typeof u.bytes_uploaded === 'number' ? u.bytes_uploaded : 0;
  const progress = el('progress', { max: Math.max(size, 1), value: Math.min(done, size) });
  const text = ` ${bytes(done)} of ${bytes(size)}`;
  progress.setAttribute('aria-label', `${u.object || ''}: ${text.trim()}`);
  return el('tr', { 'data-job-id': String(u.job_id || '') },
    el('td', {}, String(u.job_id || '')), el('td', {}, String(u.object || '')),
    el('td', { class: 'progress' }, progress, el('span', { class: 'muted' }, text)),
    el('td', {}, typeof u.rate === 'number' ? `${bytes(u.rate)}/s` : '–'),
    el('td', {}, duration(typeof u.eta_seconds === 'number' ? u.eta_seconds : null)),
    el('td', {}, String(u.state || '')));
}

// ---- queue --------------------------------------------------------------------------------------------------

function replaceList(list, items) {
  list.replaceChildren(...items.slice(0, LIMITS.queue));
}

const refreshQueue = loader('queue', async () => {
  const queue = await api('/api/queue');
  $('queue-depth').textContent = typeof queue.pending === 'number' ? String(queue.pending) : '–';
  const next = Array.isArray(queue.next) ? queue.next : [];
  replaceList($('queue-next'), next.map((job) => el('li', {},
    job.name || job.job_id || `${job.topic}/${job.partition}@${job.offset}`,
    el('span', { class: 'muted' }, ` ${job.topic}/${job.partition}@${job.offset}`,
      typeof job.age_seconds === 'number' ? `, waiting ${duration(job.age_seconds)}` : ''))));
  const retries = Array.isArray(queue.retries) ? queue.retries : [];
  replaceList($('queue-retries'), retries.map((job) => el('li', {}, job.name || job.job_id,
    el('span', { class: 'muted' }, ` attempt ${job.attempt}, not before ${when(job.not_before)}`))));
}, 2000);

// ---- throughput chart ---------------------------------------------------------------------------------------

let activity = { bucket_seconds: 60, buckets: [], length: 60 };
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Two panels over the same minutes: files/s on top, MB/s below, each scaled to its own maximum.
function drawChart() {
  const chart = $('chart');
  const seconds = activity.bucket_seconds > 0 ? activity.bucket_seconds : 60;
  const buckets = activity.buckets;
  const series = [
    { label: 'files/s', values: buckets.map((b) => (b.files || 0) / seconds), digits: 2, class: 'files' },
    { label: 'MB/s', values: buckets.map((b) => (b.bytes || 0) / seconds / 1e6), digits: 2, class: 'bytes' },
  ];
  const children = [];
  const width = 600, left = 8, right = 592, panel = 100;
  series.forEach((s, index) => {
    const top = 10 + index * (panel + 10), bottom = top + panel - 14;
    const max = Math.max(0, ...s.values);
    children.push(svg('line', { x1: left, x2: right, y1: bottom, y2: bottom, class: 'axis' }));
    children.push(svg('text', { x: left, y: top + 2, class: 'label' },
      `${s.label} (max ${max.toFixed(s.digits)}, last ${(s.values.at(-1) ?? 0).toFixed(s.digits)})`));
    if (s.values.length > 0) {
      const step = (right - left) / Math.max(1, s.values.length - 1);
      const points = s.values.map((v, i) => {
        const x = s.values.length === 1 ? right : left + i * step;
        const y = bottom - (max > 0 ? (v / max) * (panel - 30) : 0);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      });
      children.push(svg('polyline', { points: points.join(' '), class: `series ${s.class}` }));
    }
  });
  chart.setAttribute('viewBox', `0 0 ${width} ${2 * panel + 20}`);
  chart.replaceChildren(...children);
  const files = buckets.reduce((sum, b) => sum + (b.files || 0), 0);
  const total = buckets.reduce((sum, b) => sum + (b.bytes || 0), 0);
  $('chart-summary').textContent = `${files} files, ${bytes(total)} in the last ${buckets.length} minutes.`;
}

const refreshActivity = loader('activity', async () => {
  const answer = await api('/api/activity?minutes=60');
  const buckets = Array.isArray(answer.buckets) ? answer.buckets.filter((b) => b && !isNaN(Date.parse(b.start))) : [];
  activity = { bucket_seconds: answer.bucket_seconds || 60, buckets, length: Math.max(1, buckets.length) };
  drawChart();
}, 5000);

// A completion bumps the current bucket until the next fetch; the window keeps its length.
const redrawChart = loader('chart', async () => drawChart(), 1000);
function bumpActivity(event) {
  const buckets = activity.buckets;
  const seconds = activity.bucket_seconds > 0 ? activity.bucket_seconds : 60;
  const now = Date.now();
  let last = buckets.at(-1);
  if (!last) return;
  while (now >= Date.parse(last.start) + seconds * 1000) {
    last = { start: new Date(Date.parse(last.start) + seconds * 1000).toISOString(), files: 0, bytes: 0 };
    buckets.push(last);
    if (buckets.length > activity.length) buckets.shift();
  }
  last.files += 1;
  last.bytes += typeof event.bytes === 'number' ? event.bytes : 0;
  redrawChart();
}

// ---- dead letters -------------------------------------------------------------------------------------------

const replayed = new Set();

// The button is marked busy, not disabled: a disabled button would lose the keyboard focus.
async function replay(body, button) {
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    const result = await api('/api/dlq/replay', { method: 'POST', body });
    const done = Array.isArray(result.replayed) ? result.replayed : [];
    for (const r of done) if (r && r.position) replayed.add(r.position);
    const unknown = Array.isArray(result.unknown) ? result.unknown.length : 0;
    $('replay-result').textContent = `Replayed ${done.length}${unknown ? `, ${unknown} unknown` : ''}.`;
    report('replay', null);
    refreshDLQ();
    refreshQueue();
  } catch (error) {
    $('replay-result').textContent = `Replay failed: ${error.message}`;
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

const reasonID = (reason) => `replay-reason-${String(reason).replace(/[^A-Za-z0-9_-]/g, '_')}`;

// Which replay button has the focus, to give it back after the rows are rebuilt.
function focusedReplay() {
  const active = document.activeElement;
  if (!active || !active.closest) return null;
  const row = active.closest('[data-position]');
  if (row) return { position: row.getAttribute('data-position') };
  return active.dataset && active.dataset.reason !== undefined ? { id: active.id } : null;
}

function restoreFocus(focus) {
  if (!focus) return;
  let target = null;
  if (focus.id) target = $(focus.id);
  else for (const row of $('dlq').tBodies[0].rows) if (row.getAttribute('data-position') === focus.position) target = row.querySelector('button');
  if (target) target.focus();
}

const refreshDLQ = loader('dead letters', async () => {
  const dlq = await api('/api/dlq');
  const focus = focusedReplay();
  $('dlq-topic').textContent = dlq.topic ? `(${dlq.topic})` : '';
  const reasons = dlq.reasons && typeof dlq.reasons === 'object' ? Object.entries(dlq.reasons) : [];
  $('dlq-reasons').replaceChildren(...reasons.map(([reason, count]) => {
    const button = el('button', { type: 'button', id: reasonID(reason), class: 'replay-reason', 'data-reason': reason },
      `Replay all “${reason}” (${count})`);
    button.addEventListener('click', () => replay({ all: true, reason }, button));
    return button;
  }));
  const letters = Array.isArray(dlq.dead_letters) ? dlq.dead_letters : [];
  if (replayed.size > LIMITS.dlq) replayed.clear();
  $('dlq').tBodies[0].replaceChildren(...letters.slice(-LIMITS.dlq).map((d) => {
    const button = el('button', { type: 'button', class: 'replay' }, replayed.has(d.position) ? 'Replay again' : 'Replay');
    button.setAttribute('aria-label', `Replay ${d.name || d.job_id || d.position}`);
    button.addEventListener('click', () => replay({ ids: [d.position] }, button));
    return el('tr', { 'data-position': d.position }, el('td', {}, d.position), el('td', {}, d.name || d.job_id || '–'),
      el('td', {}, d.reason), el('td', { class: 'error' }, `${d.error_class}: ${d.error}`), el('td', {}, d.attempts),
      el('td', {}, when(d.last_failure)), el('td', {}, button));
  }));
  $('dlq-note').textContent = letters.length === 0 ? 'No dead letters.'
    : letters.length > LIMITS.dlq ? `Showing the newest ${LIMITS.dlq} of ${letters.length}.` : '';
  restoreFocus(focus);
}, 2000);

// ---- history and the detail view ----------------------------------------------------------------------------

let historyCursor = null;
let historyPaged = false;

function historyQuery(cursor) {
  const query = new URLSearchParams({ limit: String(LIMITS.historyPage) });
  const status = $('history-status').value;
  const name = $('history-name').value.trim();
  const since = $('history-since').value;
  if (status) query.set('status', status);
  if (name) query.set('name', name);
  if (since && !isNaN(new Date(since).getTime())) query.set('since', new Date(since).toISOString());
  if (cursor) query.set('cursor', cursor);
  return `/api/transfers?${query}`;
}

function historyRow(t) {
  const open = el('button', { type: 'button', class: 'link' }, t.name || t.job_id);
  open.addEventListener('click', () => showDetail(t.job_id, open));
  return el('tr', { 'data-job-id': t.job_id }, el('td', {}, open),
    el('td', {}, el('span', { class: `badge ${t.status}` }, t.status)), el('td', {}, t.remote),
    el('td', {}, bytes(t.total ?? t.bytes)), el('td', {}, t.attempts), el('td', {}, when(t.received_at)),
    el('td', {}, duration(t.duration_seconds)));
}

async function loadHistory(more) {
  const page = await api(historyQuery(more ? historyCursor : null));
  const transfers = (Array.isArray(page.transfers) ? page.transfers : []).filter((t) => t && t.job_id);
  const body = $('history').tBodies[0];
  const rows = transfers.map(historyRow);
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  while (body.rows.length > LIMITS.history) body.lastElementChild.remove();
  historyCursor = page.next_cursor || null;
  historyPaged = more;
  const full = body.rows.length >= LIMITS.history;
  $('history-more').hidden = !historyCursor || full;
  $('history-note').textContent = full ? `Showing ${LIMITS.history} rows; narrow the filters to see older ones.`
    : body.rows.length === 0 ? 'No transfers.' : '';
}

const refreshHistory = loader('history', () => loadHistory(false), 3000);
// Live events refresh the first page, not pages the user asked for with "More".
const liveHistory = () => { if (!historyPaged) refreshHistory(); };

function field(list, label, value) {
  if (value === undefined || value === null || value === '') return;
  list.append(el('dt', {}, label), el('dd', {}, value));
}

let detailOpener = null;

async function showDetail(jobID, opener) {
  const dialog = $('detail');
  detailOpener = opener || null;
  $('detail-title').textContent = 'Transfer';
  $('detail-body').replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  if (typeof dialog.showModal === 'function') { if (!dialog.open) dialog.showModal(); } else dialog.setAttribute('open', '');
  $('detail-close').focus();
  try {
    const detail = await api(`/api/transfers/${encodeURIComponent(jobID)}`);
    const t = detail.transfer || {};
    $('detail-title').textContent = t.name || jobID;
    const facts = el('dl', { class: 'facts' });
    field(facts, 'Job id', t.job_id);
    field(facts, 'Status', t.status);
    if (detail.kafka) field(facts, 'Kafka', `${detail.kafka.topic} partition ${detail.kafka.partition} offset ${detail.kafka.offset}`);
    field(facts, 'Remote', t.remote);
    field(facts, 'Remote path', t.remote_path);
    field(facts, 'Destination', t.destination);
    field(facts, 'Final path', detail.final_path);
    field(facts, 'Kind', t.kind);
    field(facts, 'Size', t.total !== undefined ? bytes(t.total) : bytes(t.bytes));
    field(facts, 'Checksum', detail.checksum);
    field(facts, 'Info hash', detail.info_hash);
    field(facts, 'Worker', detail.worker_host);
    field(facts, 'Engine', detail.engine);
    field(facts, 'Received', when(t.received_at));
    field(facts, 'Started', t.started_at && when(t.started_at));
    field(facts, 'Finished', t.finished_at && when(t.finished_at));
    field(facts, 'Duration', t.duration_seconds !== undefined ? duration(t.duration_seconds) : undefined);
    field(facts, 'Error', t.error_class ? `${t.error_class}: ${t.error_message || ''}` : undefined);
    const attempts = Array.isArray(detail.attempts) ? detail.attempts : [];
    const table = el('table', {}, el('thead', {}, el('tr', {}, ...['Attempt', 'Outcome', 'Started', 'Finished', 'Worker', 'Error']
      .map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...attempts.map((a) => el('tr', {}, el('td', {}, a.attempt), el('td', {}, a.outcome),
      el('td', {}, when(a.started_at)), el('td', {}, when(a.finished_at)), el('td', {}, a.worker_host || '–'),
      el('td', { class: 'error' }, a.error_class ? `${a.error_class}: ${a.error_message || ''}` : '')))));
    const parts = [facts, el('h3', {}, 'Attempts'), el('div', { class: 'scroll' }, table)];
    const uploads = Array.isArray(detail.uploads) ? detail.uploads : [];
    if (uploads.length > 0) {
      parts.push(el('h3', {}, 'Uploads'), el('div', { class: 'scroll' }, el('table', {},
        el('thead', {}, el('tr', {}, ...['Object', 'State', 'Uploaded', 'Parts', 'Updated', 'Error']
          .map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, ...uploads.map((u) => el('tr', {}, el('td', {}, u.object), el('td', {}, u.state),
          el('td', {}, `${bytes(u.bytes_uploaded)} of ${bytes(u.size)}`), el('td', {}, u.parts), el('td', {}, when(u.updated_at)),
          el('td', { class: 'error' }, u.error_class ? `${u.error_class}: ${u.error_message || ''}` : '')))))));
    }
    $('detail-body').replaceChildren(...parts);
  } catch (error) {
    $('detail-body').replaceChildren(el('p', { class: 'error' }, `Could not load this transfer: ${error.message}`));
  }
}

function closeDetail() {
  const dialog = $('detail');
  if (typeof dialog.close === 'function') { if (dialog.open) dialog.close(); } else dialog.removeAttribute('open');
}

// ---- publishing a job ---------------------------------------------------------------------------------------

async function publish(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const job = {};
  for (const key of ['name', 'location', 'remote', 'destination']) {
    const value = form.elements[key].value.trim();
    if (value) job[key] = value;
  }
  const result = $('publish-result');
  result.className = '';
  result.textContent = 'Publishing…';
  try {
    const published = await api('/api/jobs', { method: 'POST', body: job });
    result.textContent = `Published ${published.job_id} (${published.topic} partition ${published.partition} offset ${published.offset}).`;
    refreshQueue();
  } catch (error) {
    result.className = 'error';
    result.textContent = error.status === 401 ? 'A token is needed: enter it above, then publish again.'
      : `Not published: ${error.message}`;
  }
}

// ---- live events --------------------------------------------------------------------------------------------

let source = null;
let retryDelay = 1000;
let retryTimer = null;
let hadError = false;

function setConnection(state, text) {
  const badge = $('connection');
  badge.dataset.state = state;
  badge.textContent = text;
}

function onEvent(type, message) {
  let event;
  try { event = JSON.parse(message.data); } catch { return; }
  if (!event || typeof event.job_id !== 'string') return;
  switch (type) {
    case 'started':
      removeRunning(event.job_id); // a new attempt starts from zero
      updateRunning({ ...event, bytes: event.bytes ?? 0 }, event.time);
      break;
    case 'progress': updateRunning(event, event.time); return; // counts do not change
    case 'completed': removeRunning(event.job_id); bumpActivity(event); break;
    case 'skipped': removeRunning(event.job_id); break;
    case 'retrying': removeRunning(event.job_id); break;
    case 'dead_lettered': removeRunning(event.job_id); refreshDLQ(); break;
  }
  refreshStatus();
  liveHistory();
}

function connect() {
  if (retryTimer !== null) { clearTimeout(retryTimer); retryTimer = null; }
  if (source) source.close();
  const url = token() ? `/api/events?token=${encodeURIComponent(token())}` : '/api/events';
  setConnection('connecting', hadError ? 'reconnecting…' : 'connecting…');
  let es;
  try { es = new EventSource(url); } catch (error) { report('events', error); return; }
  source = es;
  es.onopen = () => {
    retryDelay = 1000;
    setConnection('live', 'live');
    report('events', null);
    if (hadError) { hadError = false; refreshAll(); }
  };
  es.onerror = () => {
    if (source !== es) return;
    hadError = true;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error such as 401): try again later, perhaps with a new token.
      setConnection('offline', 'offline');
      report('events', new Error(`the live stream closed; retrying in ${Math.round(retryDelay / 1000)} s`));
      retryTimer = setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    } else {
      setConnection('connecting', 'reconnecting…');
    }
  };
  es.addEventListener('reset', () => refreshAll());
  for (const type of EVENT_TYPES) es.addEventListener(type, (message) => onEvent(type, message));
}

function refreshAll() {
  refreshStatus();
  refreshQueue();
  refreshActivity();
  refreshDLQ();
  refreshHistory();
}

// ---- start --------------------------------------------------------------------------------------------------

function start() {
  tokenFromFragment();
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    storage.set(TOKEN_KEY, value);
    $('token-input').value = '';
    $('token-form').hidden = true;
    problems.clear();
    report('token', null);
    connect();
    refreshAll();
  });
  $('publish-form').addEventListener('submit', publish);
  $('history-filters').addEventListener('submit', (event) => { event.preventDefault(); historyPaged = false; refreshHistory(); });
  $('history-more').addEventListener('click', async () => {
    try { await loadHistory(true); report('history', null); } catch (error) { report('history', error); }
  });
  $('detail-close').addEventListener('click', closeDetail);
  $('detail').addEventListener('close', () => { if (detailOpener && detailOpener.isConnected) detailOpener.focus(); });
  $('detail').addEventListener('click', (event) => { if (event.target === $('detail')) closeDetail(); });
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') closeDetail(); });
  drawChart();
  connect();
  refreshAll();
  // Polls behind the events: counts and the queue move without events too (other consumers, the producer).
  setInterval(refreshStatus, 10000);
  setInterval(() => { if (uploading) refreshStatus(); }, 2000);
  setInterval(refreshQueue, 5000);
  setInterval(refreshActivity, 30000);
  setInterval(refreshDLQ, 30000);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
