// The pay page's script, for visitors with JavaScript on: copy buttons, and following the payment
// (polling the bridge's status URL on the same origin) so the page continues to where the visitor was
// going as soon as the payment is credited. Everything it needs is in the data-* attributes of
// .paywall; it never builds markup from what it fetches (textContent only). Without it the page still
// works: the values are selectable and a <noscript> refresh re-checks. Erasable TypeScript only.
export const PAY_SCRIPT = `(() => {
  const root = document.querySelector('.paywall');
  if (!root || !root.dataset.status) return;
  const d = root.dataset;
  const copy = async (text) => {
    try { await navigator.clipboard.writeText(text); return true; } catch {}
    const el = document.createElement('textarea');
    el.value = text; el.setAttribute('readonly', ''); el.style.position = 'fixed'; el.style.opacity = '0';
    document.body.append(el); el.select();
    try { return document.execCommand('copy'); } finally { el.remove(); }
  };
  for (const b of root.querySelectorAll('button[data-copy]')) {
    const label = b.textContent;
    b.hidden = false;
    b.addEventListener('click', async () => {
      const v = document.getElementById(b.dataset.copy);
      if (v && await copy(v.textContent)) { b.textContent = d.copied; setTimeout(() => { b.textContent = label; }, 1500); }
    });
  }
  const status = document.getElementById('status');
  let delay = 1500;
  const poll = async () => {
    try {
      const r = await fetch(d.status, { cache: 'no-store', headers: { accept: 'application/json' } });
      if (r.ok) {
        const s = await r.json();
        if (s.state === 'paid') { location.replace(d.return); return; }
        if (s.state === 'expired') { location.replace(d.page); return; }
        if (status && Array.isArray(s.lines) && s.lines.length) {
          status.replaceChildren(...s.lines.map((line) => {
            const el = document.createElement('p'); el.textContent = String(line); return el;
          }));
        }
        delay = 1500;
      } else delay = Math.min(delay * 2, 15000);
    } catch { delay = Math.min(delay * 2, 15000); }
    setTimeout(poll, delay);
  };
  setTimeout(poll, delay);
})();`;
