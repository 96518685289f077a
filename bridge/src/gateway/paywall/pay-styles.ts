// The pay page's stylesheet: one column, readable from 320 px up, large tap targets, and the values
// to copy selectable with one tap. Erasable TypeScript only.
export const PAY_STYLES = `
:root{color-scheme:light dark;--fg:#1b1b1f;--bg:#fafafa;--muted:#5c5c66;--card:#fff;--line:#d9d9e0;--accent:#6b2fb3;--ok:#17723a;--bad:#a3262a}
@media (prefers-color-scheme:dark){:root{--fg:#ececf1;--bg:#16161a;--muted:#a6a6b3;--card:#202026;--line:#3a3a44;--accent:#c9a0ff;--ok:#6fd08f;--bad:#ff8f8f}}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:34rem;margin:0 auto;padding:1rem;overflow-wrap:anywhere}
h1{font-size:1.5rem;line-height:1.25;margin:.25rem 0 .5rem}
.site{margin:0}
h2{font-size:1.05rem;margin:0 0 .5rem}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1rem;margin:1rem 0}
.scan{text-align:center}
.qr{display:block;width:100%;max-width:18rem;height:auto;margin:0 auto .75rem;border-radius:8px}
.lead{font-size:1.05rem}
.muted{color:var(--muted);font-size:.9rem}
dl{margin:0}
dl div{margin:0 0 .75rem}
dt{font-weight:600;font-size:.9rem}
dd{margin:0}
.value{display:inline-block;max-width:100%;padding:.2rem .4rem;border:1px solid var(--line);border-radius:6px;font:.95rem/1.4 ui-monospace,Menlo,Consolas,monospace;word-break:break-all;user-select:all;-webkit-user-select:all}
button,.button{display:inline-block;min-height:44px;padding:.6rem 1.1rem;border:0;border-radius:10px;background:var(--accent);color:#fff;font:inherit;font-weight:600;text-decoration:none;cursor:pointer}
@media (prefers-color-scheme:dark){button,.button{color:#16161a}}
button.copy{min-height:32px;padding:.2rem .6rem;font-size:.85rem;margin-left:.25rem}
form{margin:1rem 0}
textarea,input[type=text]{width:100%;padding:.5rem;border:1px solid var(--line);border-radius:8px;background:var(--card);color:var(--fg);font:.9rem/1.4 ui-monospace,Menlo,Consolas,monospace}
textarea{min-height:8rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
.status{padding:.75rem 1rem;border-left:4px solid var(--accent);background:var(--card);border-radius:6px}
.status p{margin:0}
.status.ok{border-color:var(--ok)}
.status.bad,.notes li{color:var(--bad)}
.notes{margin:.5rem 0 0;padding-left:1.2rem}
footer{margin-top:2rem}
`;
