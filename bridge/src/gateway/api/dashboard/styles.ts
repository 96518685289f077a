// The page's CSS (inline under the CSP nonce). Phone first: one column, cards flow into a grid.
export const STYLES = `
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f4f7;color:#1d1d24}
header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between;padding:.8rem 1rem;background:#2d1b4e;color:#fff}
header h1{font-size:1.1rem;margin:0}
header .muted{color:#d8d0ea}
h3{font-size:.9rem;margin:.8rem 0 .3rem}
main{display:grid;gap:1rem;padding:1rem;grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr));max-width:1200px;margin:0 auto}
section{background:#fff;border-radius:10px;padding:1rem;box-shadow:0 1px 3px rgba(0,0,0,.08);min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:1rem;margin:0 0 .6rem}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:anywhere;word-break:break-all}
code.record{display:block;background:#f0eef6;padding:.5rem;border-radius:6px;margin:.3rem 0}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:999px;font-size:.8rem;font-weight:600;background:#ddd;color:#333}
.badge.ok{background:#d9f5df;color:#125c24}.badge.bad{background:#fde0e0;color:#8a1414}
.badge.warn{background:#fff1cc;color:#6b4d00}.badge.muted{background:#e8e8ee;color:#555}
.muted,.detail{color:#666;font-size:.85rem;overflow-wrap:anywhere}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
button{font:inherit;padding:.35rem .8rem;border-radius:6px;border:1px solid #6b4fa3;background:#6b4fa3;color:#fff;cursor:pointer}
.qr{display:block;width:100%;max-width:220px;height:auto;margin:.6rem auto 0}
.stats{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:.6rem;margin:0}
.stats div{background:#f7f6fb;border-radius:8px;padding:.5rem}
.stats dt{font-size:.8rem;color:#666}.stats dd{margin:0;font-size:1.25rem;font-weight:600;overflow-wrap:anywhere}
progress{width:100%;height:.8rem}
.chart{display:block;width:100%;height:auto;margin-top:.5rem}
.chart-line{stroke:#6b4fa3;stroke-width:2.5;stroke-linejoin:round}.chart-line-dot{fill:#6b4fa3}
.chart-axis{stroke:#ccc}.chart-label{font-size:18px;fill:#666}
table{width:100%;border-collapse:collapse;table-layout:fixed;font-size:.85rem}
th,td{text-align:left;padding:.25rem .3rem;border-bottom:1px solid #eee;vertical-align:top}
th.n,td.n{text-align:right;width:5.5rem}
ul.plain{list-style:none;padding:0;margin:0}
ul.plain li{padding:.3rem 0;border-bottom:1px solid #eee;overflow-wrap:anywhere}
#events time{color:#666;font-size:.8rem;margin-right:.5rem}
.ev-complete span{color:#125c24;font-weight:600}
.empty{color:#888;font-style:italic}
form.login{max-width:360px;margin:15vh auto;background:#fff;padding:1.5rem;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.1)}
form.login input{width:100%;font:inherit;padding:.5rem;margin:.5rem 0 1rem;border:1px solid #bbb;border-radius:6px}
`;
