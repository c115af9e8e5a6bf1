// The marketplace page: plain DOM, no framework, nothing from outside this relay. Data comes
// from the relay's JSON API; the relay's own websocket (NIP-01 REQ on the market kinds) says
// when something changed, and the page re-reads what it shows.
'use strict';

const KIND_NAMES = { 5050: 'TextGen', 5930: 'SandboxRun', 5931: 'RepoIndex', 5932: 'PatchGen', 5933: 'CodeReview' };
const FEED_KINDS = [5050, 5930, 5931, 5932, 5933, 6050, 6930, 6931, 6932, 6933, 7000, 31990, 39300, 39301, 39302, 30382];
const $ = (sel) => document.querySelector(sel);
const state = { providers: [], selected: null, job: null };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const short = (hex) => (hex ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : '—');
const sats = (msats) => (msats === null || msats === undefined ? '—' : `${(msats / 1000).toLocaleString('en-US', { maximumFractionDigits: 3 })} sats`);
const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)} %`);
const time = (s) => (s ? new Date(s * 1000).toISOString().replace('T', ' ').slice(0, 19) : '—');
const kindName = (k) => `${k}${KIND_NAMES[k] ? ` ${KIND_NAMES[k]}` : ''}`;

async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function filterQuery() {
  const q = new URLSearchParams();
  const kind = $('#f-kind').value;
  const price = $('#f-price').value;
  const tier = $('#f-tier').value;
  if (kind) q.set('kind', kind);
  if (price !== '') q.set('max_price', String(Math.round(Number(price) * 1000)));
  if (tier) q.set('min_tier', tier);
  if ($('#f-live').checked) q.set('live', '1');
  return q.toString();
}

async function loadStats() {
  const s = await getJson('/api/stats');
  $('#reputation-key').textContent = s.reputationPubkey;
  const dl = $('#stats');
  dl.replaceChildren(
    ...[['Providers', s.providers], ['Live now', s.live], ['Jobs', s.jobs], ['Paid jobs', s.paidJobs], ['Sats paid', s.satsPaid.toLocaleString('en-US')]]
      .map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', { 'data-stat': k }, v))),
  );
}

function priceList(p) {
  const entries = Object.entries(p.prices || {});
  if (!entries.length) return '—';
  return entries.map(([k, e]) => `${k}: ${sats(e.baseMsats)}${e.perUnitMsats ? ` + ${sats(e.perUnitMsats)}/${e.unit}` : ''}${e.capMsats !== undefined ? ` (cap ${sats(e.capMsats)})` : ''}`).join(' · ');
}

function card(p) {
  const r = p.reputation;
  return el('article', { class: 'card', tabindex: 0, 'data-pubkey': p.pubkey, onclick: () => select(p.pubkey), onkeydown: (e) => { if (e.key === 'Enter') select(p.pubkey); } },
    el('h3', {}, el('span', {}, el('span', { class: `dot${p.live ? ' live' : ''}`, title: p.live ? 'live' : 'not live' }), p.name || short(p.pubkey)), el('span', { class: `badge t${r.tier}` }, `tier ${r.tier}`)),
    el('div', { class: 'pk' }, short(p.pubkey)),
    el('dl', { class: 'kv' },
      el('dt', {}, 'kinds'), el('dd', {}, p.kinds.length ? p.kinds.map(kindName).join(', ') : '—'),
      el('dt', {}, 'prices'), el('dd', {}, priceList(p)),
      el('dt', {}, 'success'), el('dd', { 'data-field': 'success' }, `${pct(r.successRate)} of ${r.accepted} jobs · ${r.paid} paid`),
      el('dt', {}, 'uptime 24 h'), el('dd', {}, pct(p.uptime24h)),
      el('dt', {}, 'isolation'), el('dd', {}, p.isolation || '—'),
      el('dt', {}, 'latency'), el('dd', {}, r.delivered ? `p50 ${r.medianLatencySecs} s · p90 ${r.p90LatencySecs} s` : '—'),
    ));
}

async function loadProviders() {
  const { providers } = await getJson(`/api/providers?${filterQuery()}`);
  state.providers = providers;
  const box = $('#providers');
  box.replaceChildren(...(providers.length ? providers.map(card) : [el('p', { class: 'empty' }, 'No provider matches these filters.')]));
}

function barChart(title, cls, points, fmt) {
  const w = 320, h = 150, pad = 18;
  const max = Math.max(1, ...points.map((p) => p[1]));
  const bw = points.length ? (w - pad * 2) / points.length : 0;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  points.forEach(([label, v], i) => {
    const bh = ((h - pad * 2) * v) / max;
    const r = document.createElementNS(svg.namespaceURI, 'rect');
    r.setAttribute('x', String(pad + i * bw + 1));
    r.setAttribute('y', String(h - pad - bh));
    r.setAttribute('width', String(Math.max(1, bw - 2)));
    r.setAttribute('height', String(bh));
    const tip = document.createElementNS(svg.namespaceURI, 'title');
    tip.textContent = `${label}: ${fmt(v)}`;
    r.append(tip);
    svg.append(r);
  });
  const t = document.createElementNS(svg.namespaceURI, 'text');
  t.setAttribute('x', String(pad));
  t.setAttribute('y', '12');
  t.textContent = `max ${fmt(max)}`;
  svg.append(t);
  return el('div', { class: `chart ${cls}` }, el('h3', {}, title), points.length ? svg : el('p', { class: 'empty' }, 'no data yet'));
}

function latencyHistogram(latencies) {
  if (!latencies.length) return [];
  const max = Math.max(...latencies);
  const step = Math.max(1, Math.ceil((max + 1) / 12));
  const bins = Array.from({ length: Math.ceil((max + 1) / step) }, (_, i) => [`${i * step}–${(i + 1) * step} s`, 0]);
  for (const l of latencies) bins[Math.floor(l / step)][1]++;
  return bins;
}

async function select(pubkey) {
  state.selected = pubkey;
  const p = await getJson(`/api/providers/${pubkey}`);
  const r = p.reputation;
  const hourly = p.charts.hourly.map(([h, n]) => [time(h), n]);
  const satsHourly = p.charts.hourly.map(([h, , s]) => [time(h), s]);
  const detail = $('#detail');
  detail.hidden = false;
  detail.replaceChildren(
    el('h2', {}, p.name || short(p.pubkey), ' ', el('span', { class: `badge t${r.tier}` }, `tier ${r.tier}`)),
    el('p', {}, el('code', {}, p.pubkey)),
    p.about ? el('p', { class: 'sub' }, p.about) : null,
    el('div', { class: 'charts' },
      barChart('Jobs per hour', 'jobs', hourly, (v) => `${v} jobs`),
      barChart('Latency distribution (request → result)', 'latency', latencyHistogram(p.charts.latencies), (v) => `${v} jobs`),
      barChart('Sats earned per hour', 'sats', satsHourly, (v) => `${v} sats`),
    ),
    el('h3', {}, 'Earnings'),
    el('table', { id: 'earnings' },
      el('thead', {}, el('tr', {}, ...['kind', 'jobs', 'delivered', 'paid', 'disputes lost', 'p50 latency', 'sats earned'].map((h) => el('th', {}, h)))),
      el('tbody', {},
        ...r.perKind.map((k) => el('tr', {}, el('td', {}, kindName(k.kind)), el('td', {}, k.jobs), el('td', {}, k.delivered), el('td', {}, k.paid), el('td', {}, k.disputesLost), el('td', {}, `${k.medianLatencySecs} s`), el('td', {}, (k.satsEarned ?? 0).toLocaleString('en-US')))),
        el('tr', {}, el('th', {}, 'total'), el('th', {}, r.jobs), el('th', {}, r.delivered), el('th', {}, r.paid), el('th', {}, r.disputesLost), el('th', {}, `${r.medianLatencySecs} s`), el('th', { 'data-field': 'sats-total' }, r.satsEarned.toLocaleString('en-US'))),
      ),
    ),
    el('p', { class: 'sub' }, `Rating ${r.rating === null ? '—' : r.rating.toFixed(2)} from paying buyers · ${r.buyers} independent buyers · not counted: ${r.excluded.self} self-dealt, ${r.excluded.cluster} from its payment cluster, ${r.excluded.unknownBuyer} with an unknown buyer.`),
    el('h3', {}, 'Recent jobs'),
    jobsTable(p.jobs),
  );
}

function jobsTable(jobs) {
  if (!jobs.length) return el('p', { class: 'empty' }, 'No jobs yet.');
  return el('table', {},
    el('thead', {}, el('tr', {}, ...['requested', 'kind', 'buyer', 'state', 'paid'].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...jobs.map((j) => el('tr', { class: 'clickable', 'data-job': j.id, onclick: () => showJob(j.id) },
      el('td', {}, time(j.requestedAt)), el('td', {}, j.kind ? kindName(j.kind) : '—'), el('td', {}, short(j.buyer)),
      el('td', { class: `state ${j.state}` }, j.state), el('td', {}, sats(j.providers.reduce((n, p) => n + p.paidMsats, 0))))),
    ));
}

async function showJob(id) {
  state.job = id;
  const j = await getJson(`/api/jobs/${id}`);
  const box = $('#job');
  box.hidden = false;
  const who = (pk) => (pk === j.buyer ? 'buyer' : j.providers.some((p) => p.pubkey === pk) ? 'provider' : pk === j.dispute?.arbiter ? 'arbiter' : 'someone');
  box.replaceChildren(
    el('h2', {}, 'Job ', el('code', {}, short(j.id)), ' ', el('span', { class: `state ${j.state}` }, j.state)),
    el('ol', { class: 'timeline', id: 'timeline' }, ...j.timeline.map((x) => el('li', {}, el('span', { class: 'when' }, time(x.at)), el('strong', {}, x.what), ` by ${who(x.by)} ${short(x.by)}`))),
    ...j.providers.filter((p) => p.payment !== 'none').map((p) => el('p', { class: 'sub' }, `Payment to ${short(p.pubkey)}: ${p.payment}${p.paymentProblem ? ` (${p.paymentProblem})` : ''}`)),
  );
}

function feedLine(e, live) {
  const k = e.kind;
  const what = k >= 5000 && k < 6000 ? `request ${kindName(k)}` : k >= 6000 && k < 7000 ? `result ${kindName(k - 1000)}` : k === 7000 ? `feedback ${(e.tags.find((t) => t[0] === 'status') || [])[1] || ''}` : k === 39302 ? 'receipt' : k === 39300 ? 'dispute' : k === 39301 ? 'verdict' : k === 31990 ? 'announcement' : k === 30382 ? 'reputation' : String(k);
  const ref = (e.tags.find((t) => t[0] === 'e') || [])[1];
  const item = el('li', {}, el('span', { class: 't' }, time(e.created_at).slice(11)), el('span', { class: 'k' }, what), el('span', {}, `by ${short(e.pubkey)}${ref ? ` · job ${short(ref)}` : ''}`));
  const feed = $('#feed');
  // Stored events come newest first, then live ones as they happen: keep newest on top.
  if (live) feed.prepend(item);
  else feed.append(item);
  while (feed.children.length > 100) feed.lastChild.remove();
}

let refreshTimer;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    void loadStats();
    void loadProviders();
    if (state.selected) void select(state.selected);
    if (state.job) void showJob(state.job);
  }, 300);
}

function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`);
  const status = $('#live-status');
  let eose = false;
  ws.onopen = () => {
    status.textContent = 'live: following the market on this relay';
    status.classList.add('on');
    ws.send(JSON.stringify(['REQ', 'feed', { kinds: FEED_KINDS, limit: 30 }]));
  };
  ws.onmessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (msg[0] === 'EVENT' && msg[1] === 'feed') {
      feedLine(msg[2], eose);
      if (eose) refreshSoon();
    } else if (msg[0] === 'EOSE') eose = true;
  };
  ws.onclose = () => {
    status.textContent = 'disconnected; reconnecting…';
    status.classList.remove('on');
    setTimeout(connect, 3000);
  };
}

$('#filters').addEventListener('input', () => void loadProviders());
$('#filters').addEventListener('submit', (e) => e.preventDefault());
void loadStats();
void loadProviders();
connect();
