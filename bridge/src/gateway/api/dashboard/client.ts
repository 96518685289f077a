// The page's only script (plain ES2017, no build step, served inline under a CSP nonce): the copy
// button, the live events over SSE, and refreshing the numbers from /dashboard.json every 5 s.
export const CLIENT_SCRIPT = `(function () {
  'use strict';
  var base = document.body.getAttribute('data-base') || '';
  var live = document.getElementById('live');
  var list = document.getElementById('events');
  function setLive(text, cls) { if (live) { live.textContent = text; live.className = 'badge ' + cls; } }
  function stateClass(s) { return s === 'found' ? 'ok' : s === 'pending' || s === 'off' ? 'muted' : 'bad'; }
  function fmtBytes(v) {
    var n = Number(v); if (!isFinite(n) || n < 0) return '\\u2013';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i === 0 ? Math.round(n) + ' B' : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) + ' ' + u[i];
  }
  function fmtCount(v) { var n = Number(v); return isFinite(n) ? Math.round(n).toLocaleString('en-US') : '\\u2013'; }
  var fmts = { bytes: fmtBytes, count: fmtCount, text: String, percent: function (v) { return fmtCount(v) + '%'; }, yesno: function (b) { return b ? 'yes' : 'no'; } };
  function get(o, path) { return path.split('.').reduce(function (a, k) { return a == null ? undefined : a[k]; }, o); }

  function refresh() {
    fetch(base + '/dashboard.json', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { setLive('signed out: reload', 'bad'); return null; }
      return r.ok ? r.json() : null;
    }).then(function (s) {
      if (!s) return;
      document.querySelectorAll('[data-f]').forEach(function (el) {
        var v = get(s, el.getAttribute('data-f'));
        var f = fmts[el.getAttribute('data-fmt') || 'text'] || String;
        el.textContent = v === undefined || v === null ? '\\u2013' : f(v);
      });
      var p = document.getElementById('tor-progress');
      if (p && s.tor) p.value = Number(s.tor.progress) || 0;
      var st = document.getElementById('txt-state');
      if (st && s.txt) st.className = 'badge ' + stateClass(s.txt.state);
    }).catch(function () {});
  }
  setInterval(refresh, 5000);

  function addEvent(e) {
    if (!list) return;
    var empty = list.querySelector('.empty');
    if (empty) empty.remove();
    var li = document.createElement('li');
    li.className = 'ev ev-' + (e.type === 'payment-complete' ? 'complete' : 'requested');
    var t = document.createElement('time');
    var d = new Date(e.at);
    t.textContent = isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
    var span = document.createElement('span');
    span.textContent = String(e.text || e.type);
    li.appendChild(t); li.appendChild(span);
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 50) list.removeChild(list.lastChild);
    if (e.type === 'payment-complete') refresh();
  }
  if (window.EventSource) {
    var es = new EventSource(base + '/events');
    es.onopen = function () { setLive('live', 'ok'); };
    es.onerror = function () { setLive(es.readyState === 2 ? 'disconnected: reload' : 'reconnecting\\u2026', 'warn'); };
    ['payment-requested', 'payment-complete'].forEach(function (type) {
      es.addEventListener(type, function (m) { try { addEvent(JSON.parse(m.data)); } catch (err) { /* a bad line is skipped */ } });
    });
  } else setLive('no live updates in this browser', 'muted');

  var copy = document.getElementById('copy');
  if (copy) copy.addEventListener('click', function () {
    var text = copy.getAttribute('data-copy') || '';
    function done(ok) { copy.textContent = ok ? 'Copied' : 'Select and copy'; setTimeout(function () { copy.textContent = 'Copy'; }, 2000); }
    function fallback() {
      var el = document.getElementById('onion');
      if (!el) return done(false);
      var range = document.createRange(); range.selectNodeContents(el);
      var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
      var ok = false; try { ok = document.execCommand('copy'); } catch (err) { ok = false; }
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    else fallback();
  });
})();`;
