/** The page that hosts the web app, and its style sheet. No inline script or style: the CSP forbids both. */

export function webHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>runwall</title>
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/web/main.js"></script>
</head>
<body>
<header class="top"><a class="brand" href="#/runs">runwall</a><nav id="nav"></nav><span id="who"></span></header>
<main id="app"><p class="muted">Loading…</p></main>
</body>
</html>
`;
}

export const WEB_CSS = `
:root { --fg: #1d2430; --muted: #667085; --line: #e3e7ee; --bg: #f7f8fa; --card: #fff; --accent: #2f5bd3;
  --allowed: #1f7a3a; --audit: #9a6700; --blocked: #b42318; --attack: #7a0b9a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #111827; color: #fff; }
header.top a { color: #e5e7eb; }
header.top .brand { font-weight: 700; font-size: 16px; color: #fff; }
#nav { display: flex; gap: 16px; flex: 1; }
#who { color: #9ca3af; font-size: 13px; }
#who button { margin-left: 8px; }
main { padding: 20px 24px; max-width: 1280px; margin: 0 auto; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.muted { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px; margin: 12px 0; }
table { width: 100%; border-collapse: collapse; background: var(--card); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
tr.clickable { cursor: pointer; }
tr.clickable:hover td { background: #f0f4ff; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: #0f172a; color: #e2e8f0; padding: 12px; border-radius: 6px; overflow: auto; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.badge.allowed { background: var(--allowed); }
.badge.audit { background: var(--audit); }
.badge.blocked { background: var(--blocked); }
.badge.attack-blocked { background: var(--attack); }
.badge.sev-info, .badge.sev-low { background: #475467; }
.badge.sev-medium { background: var(--audit); }
.badge.sev-high, .badge.sev-critical { background: var(--blocked); }
.tabs { display: flex; gap: 4px; border-bottom: 1px solid var(--line); margin: 16px 0; flex-wrap: wrap; }
.tabs a { padding: 8px 14px; border: 1px solid transparent; border-bottom: none; border-radius: 6px 6px 0 0; color: var(--muted); }
.tabs a.active { background: var(--card); border-color: var(--line); color: var(--fg); font-weight: 600; margin-bottom: -1px; }
.counts { display: flex; gap: 12px; flex-wrap: wrap; }
.count { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 110px; }
.count b { display: block; font-size: 20px; }
form.filters, form.inline { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; margin: 12px 0; }
label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
input, select, textarea, button { font: inherit; padding: 5px 8px; border: 1px solid #cfd5df; border-radius: 6px; background: #fff; color: var(--fg); }
textarea { width: 100%; min-height: 90px; font-family: ui-monospace, monospace; font-size: 12.5px; }
button { background: var(--accent); border-color: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--fg); border-color: #cfd5df; }
button:disabled { opacity: .5; cursor: default; }
.pager { display: flex; gap: 8px; align-items: center; margin: 10px 0; }
.error { color: var(--blocked); background: #fef3f2; border: 1px solid #fecdca; border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
.notice { color: #1d4ed8; background: #eff6ff; border: 1px solid #bfdbfe; border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
ul.tree { list-style: none; padding-left: 18px; margin: 4px 0; border-left: 1px dashed var(--line); }
ul.tree.root { padding-left: 0; border-left: none; }
ul.tree li { margin: 3px 0; }
.chain { font-family: ui-monospace, monospace; font-size: 12.5px; }
.diff-added { color: var(--allowed); }
.diff-unused { color: var(--muted); text-decoration: line-through; }
svg.chart { background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin: 4px 0; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.login { max-width: 380px; margin: 40px auto; }
.login form { display: flex; flex-direction: column; gap: 10px; }
`;
