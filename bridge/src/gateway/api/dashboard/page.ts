// The dashboard's HTML, rendered on the server. Every value from the source passes through `esc`
// (or a formatter that yields only digits and units); the QR and chart SVGs are built here.
import { torplusName, torplusRecord } from '../../../dns/torplus-txt.js';
import { earningsChart } from './charts.js';
import { CLIENT_SCRIPT } from './client.js';
import { esc, formatBytes, formatCount, formatXlm, num, onionHost, safeJson } from './format.js';
import type { DashboardSnapshot } from './source.js';
import { STYLES } from './styles.js';

export interface PageContext {
  /** Where the router is mounted ('' at the root), for the script's URLs. */
  base: string;
  /** The CSP nonce of this response's <style> and <script>. */
  nonce: string;
}

function layout(title: string, body: string, ctx: PageContext, script = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${esc(title)}</title>
<style nonce="${esc(ctx.nonce)}">${STYLES}</style>
</head><body data-base="${esc(ctx.base)}">
${body}
${script ? `<script nonce="${esc(ctx.nonce)}">${script}</script>` : ''}
</body></html>`;
}

/** The login page: a form asking for the token, and nothing about the bridge. */
export function renderLogin(ctx: PageContext): string {
  return layout(
    'TorPlus bridge: sign in',
    `<form class="login" method="get" action="${esc(ctx.base)}/">
<h1>TorPlus bridge</h1>
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
<p class="muted">The token is ADMIN_TOKEN, or the one the bridge printed on its first start (DATA_DIR/admin-token).</p>
</form>`,
    ctx,
  );
}

const STATE_CLASS: Record<string, string> = { found: 'ok', pending: 'muted', off: 'muted', missing: 'bad', wrong: 'bad', error: 'bad' };

function badge(text: unknown, cls: string, attrs = ''): string {
  return `<span class="badge ${cls}"${attrs}>${esc(text)}</span>`;
}

function stat(label: string, value: string, field: string, fmt: string): string {
  return `<div><dt>${esc(label)}</dt><dd data-f="${field}" data-fmt="${fmt}">${value}</dd></div>`;
}

/** A record's entries as "key: value" lines (peers and fills have no fixed shape). */
function kv(record: Record<string, unknown> | undefined): string {
  if (!record || typeof record !== 'object') return '<span class="empty">none</span>';
  const items = Object.entries(record).map(([k, v]) => {
    const text = v !== null && typeof v === 'object' ? safeJson(v) : String(v);
    return `<b>${esc(k)}</b>: <span class="mono">${esc(text.length > 200 ? `${text.slice(0, 200)}…` : text)}</span>`;
  });
  return items.length ? items.join('<br>') : '<span class="empty">none</span>';
}

function onionSection(s: DashboardSnapshot, qrSvg: string | undefined): string {
  if (!s.onion) return `<section id="onion-card"><h2>Onion address</h2><p class="empty">Not known yet: tor has not published the onion service.</p></section>`;
  const host = onionHost(s.onion);
  return `<section id="onion-card"><h2>Onion address</h2>
<div class="row"><code id="onion">${esc(host)}</code><button type="button" id="copy" data-copy="${esc(`http://${host}/`)}">Copy</button></div>
${qrSvg ?? ''}</section>`;
}

function dnsSection(s: DashboardSnapshot): string {
  const txtRecord = s.domain && s.onion ? torplusRecord(s.domain, s.onion) : s.txt?.record;
  const state = String(s.txt?.state ?? 'pending');
  const root = s.ipfs?.root;
  const dnslinkRecord = s.domain && root ? `_dnslink.${torplusName(s.domain)} TXT "dnslink=/ipfs/${root}"` : undefined;
  return `<section id="dns-card"><h2>DNS</h2>
<div class="row">TXT record ${badge(state, STATE_CLASS[state] ?? 'bad', ' id="txt-state" data-f="txt.state"')}</div>
${txtRecord ? `<code class="record" id="txt-record">${esc(txtRecord)}</code>` : '<p class="empty">Set DOMAIN to get the record to publish.</p>'}
<p class="detail" data-f="txt.detail">${esc(s.txt?.detail)}</p>
<div class="row">DNSLink record</div>
${dnslinkRecord ? `<code class="record" id="dnslink-record">${esc(dnslinkRecord)}</code>` : `<p class="empty">${s.domain ? 'No IPFS root yet.' : 'Set DOMAIN to get the record to publish.'}</p>`}
${s.ipfs?.dnslink ? `<p class="detail">Published: <code>${esc(s.ipfs.dnslink)}</code></p>` : ''}
<p class="detail">Current IPFS root: <code id="ipfs-root">${esc(root ?? 'none')}</code></p></section>`;
}

function torSection(s: DashboardSnapshot): string {
  const t = s.tor;
  const progress = Math.max(0, Math.min(100, num(t?.progress) ?? 0));
  return `<section id="tor-card"><h2>Tor</h2>
<progress id="tor-progress" max="100" value="${progress}"></progress>
<dl class="stats">
${stat('Bootstrap', `${progress}%`, 'tor.progress', 'percent')}
${stat('Bootstrapped', t?.bootstrapped ? 'yes' : 'no', 'tor.bootstrapped', 'yesno')}
${stat('Onion published', t?.published ? 'yes' : 'no', 'tor.published', 'yesno')}
${stat('Restarts', formatCount(t?.restarts), 'tor.restarts', 'count')}
</dl><p class="detail" data-f="tor.detail">${esc(t?.detail)}</p></section>`;
}

function visitorsSection(s: DashboardSnapshot): string {
  const v = s.visitors;
  return `<section id="visitors-card"><h2>Visitors</h2><dl class="stats">
${stat('Now', formatCount(v?.now), 'visitors.now', 'count')}
${stat('Throttled', formatCount(v?.throttled), 'visitors.throttled', 'count')}
${stat('Free traffic', formatBytes(v?.freeBytes), 'visitors.freeBytes', 'bytes')}
${stat('Paid traffic', formatBytes(v?.paidBytes), 'visitors.paidBytes', 'bytes')}
</dl></section>`;
}

function earningsSection(s: DashboardSnapshot): string {
  const e = s.earnings;
  const p = s.payments;
  return `<section id="earnings-card"><h2>Earnings</h2><dl class="stats">
${stat('Total XLM', esc(formatXlm(e?.totalXlm)), 'earnings.totalXlm', 'text')}
${stat('Receipts', formatCount(e?.receipts), 'earnings.receipts', 'count')}
</dl>${earningsChart(e?.history)}
<p class="detail">Payments ${p?.enabled ? `on (${esc(p.network)})${p.account ? `, to <code>${esc(p.account)}</code>` : ''}` : 'off'}</p></section>`;
}

function eventsSection(s: DashboardSnapshot): string {
  const recent = s.recentEvents ?? [];
  const items = recent.length
    ? recent
        .map((e) => `<li class="ev ev-${e.type === 'payment-complete' ? 'complete' : 'requested'}"><time>${esc(new Date(e.at).toISOString().slice(11, 19))}</time> <span>${esc(e.text)}</span></li>`)
        .join('')
    : '<li class="empty">No events yet: payments requested and completed appear here.</li>';
  return `<section id="events-card"><h2>Live events <span id="live" class="badge muted">connecting…</span></h2>
<ul class="plain" id="events">${items}</ul></section>`;
}

function ipfsSection(s: DashboardSnapshot): string {
  const i = s.ipfs;
  if (!i) return `<section id="ipfs-card"><h2>IPFS</h2><p class="empty">IPFS is off.</p></section>`;
  const top = Array.isArray(i.top) ? i.top : [];
  const rows = top
    .map((c) => `<tr><td class="mono">${esc(c?.cid)}</td><td class="n">${formatCount(c?.count)}</td><td class="n">${formatBytes(c?.dagSize)}</td></tr>`)
    .join('');
  const peers = Array.isArray(i.peers) ? i.peers : [];
  return `<section id="ipfs-card" class="wide"><h2>IPFS</h2>
<h3 class="muted">Top CIDs</h3>
${rows ? `<table id="top-cids"><thead><tr><th>CID</th><th class="n">Requests</th><th class="n">Size</th></tr></thead><tbody>${rows}</tbody></table>` : '<p class="empty">No requests yet.</p>'}
<h3 class="muted">Peers (${peers.length})</h3>
${peers.length ? `<ul class="plain" id="peers">${peers.map((p) => `<li>${kv(p)}</li>`).join('')}</ul>` : '<p class="empty">No peers.</p>'}
<h3 class="muted">Last fill</h3><p id="last-fill">${kv(i.lastFill)}</p></section>`;
}

function certificateSection(s: DashboardSnapshot): string {
  const c = s.certificate;
  if (!c) return `<section id="cert-card"><h2>Certificate</h2><p class="empty">No certificate.</p></section>`;
  const days = num(c.daysLeft);
  const cls = days === undefined ? 'muted' : days < 0 ? 'bad' : days < 14 ? 'warn' : 'ok';
  const text = days === undefined ? 'expiry unknown' : days < 0 ? `expired ${formatCount(-days)} days ago` : `${formatCount(days)} days left`;
  return `<section id="cert-card"><h2>Certificate</h2>
<div class="row">${badge(text, cls, ' id="cert-days"')}${c.notAfter ? `<span class="detail">until ${esc(c.notAfter)}</span>` : ''}</div>
<p>${(Array.isArray(c.names) ? c.names : []).map((n) => `<code>${esc(n)}</code>`).join(' ')}</p>
<p class="detail">${esc(c.detail)}</p></section>`;
}

function instancesSection(s: DashboardSnapshot): string {
  const i = s.instances;
  if (!i) return '';
  const rows = i.list
    .map((b) => `<tr><td class="mono">${esc(onionHost(b.onion))}${b.self ? ' <span class="badge muted">this one</span>' : ''}</td>` +
      `<td>${badge(b.live ? 'live' : 'gone', b.live ? 'ok' : 'bad')}</td><td>${esc(b.lastBeat.slice(11, 19))}</td>` +
      `<td class="n">${formatCount(b.visitors)}</td><td class="n">${formatBytes(b.bytesServed)}</td></tr>`)
    .join('');
  return `<section id="instances-card" class="wide"><h2>Bridges behind <code>${esc(onionHost(i.master))}</code></h2>
${rows ? `<table id="instances"><thead><tr><th>Backend onion</th><th>State</th><th>Last heartbeat (UTC)</th><th class="n">Visitors</th><th class="n">Served</th></tr></thead><tbody>${rows}</tbody></table>` : '<p class="empty">No backend has beat yet.</p>'}
<p class="detail">Earnings above are every bridge's: they share one database.</p></section>`;
}

/** The whole dashboard. */
export function renderDashboard(s: DashboardSnapshot, qrSvg: string | undefined, ctx: PageContext): string {
  const body = `<header><h1>TorPlus bridge</h1><span class="muted">${s.domain ? esc(s.domain) : ''}</span></header>
<main>
${onionSection(s, qrSvg)}
${dnsSection(s)}
${torSection(s)}
${visitorsSection(s)}
${earningsSection(s)}
${instancesSection(s)}
${eventsSection(s)}
${ipfsSection(s)}
${certificateSection(s)}
</main>`;
  return layout('TorPlus bridge', body, ctx, CLIENT_SCRIPT);
}
