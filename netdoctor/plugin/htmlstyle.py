"""The report page's style: inline CSS (screen and print) and one small inline script.

Nothing here loads anything from the network: the page must read the same offline and printed.
The CSS also reorders pytest-html's page (a flex column) so that netdoctor's block comes first
and pytest-html's environment table last.
"""

from __future__ import annotations

CSS = """
body{display:flex;flex-direction:column;margin:8px 16px;color:#333}
#title{order:-3;font-size:15px;margin:0 0 4px 0;color:#555}
.summary{order:-2}
#results-table{order:0}
body>p,#environment-header,#environment{order:2}
footer{order:3}
.summary__data{flex:none}
.summary__data>h2:first-child{display:none}
#netdoctor{font-size:13px;color:#222;max-width:1380px}
#netdoctor h2{font-size:15px;margin:10px 0 6px 0}
#netdoctor h3{font-size:13px;margin:6px 0 4px 0}
#netdoctor pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0;font-size:11.5px;
 background:#f5f5f5;border:1px solid #e0e0e0;padding:3px 5px;color:#111}
#netdoctor code{font-size:11.5px}
.nd-banner{display:flex;align-items:baseline;gap:18px;flex-wrap:wrap;padding:8px 14px;
 border-radius:4px;color:#fff;background:#546e7a}
.nd-banner .nd-verdict{font-size:22px;font-weight:bold}
.nd-banner .nd-score{font-size:16px}
.nd-banner .nd-meta{font-size:12px;opacity:.95}
.nd-v-confirmed{background:#b71c1c}.nd-v-partial{background:#e65100}
.nd-v-none{background:#2e7d32}.nd-v-failing{background:#6d4c41}
.nd-oneline{margin:6px 0;font-size:14px;font-weight:bold;color:#1b5e20}
.nd-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px;
 margin-top:4px}
.nd-cause{border-left:4px solid #b71c1c;padding:2px 8px;margin:4px 0 8px 0;background:#fff8f8}
.nd-cause .nd-sum{font-weight:bold;font-size:13.5px}
.nd-cause ul{margin:2px 0 2px 18px;padding:0}
.nd-cause details>summary{cursor:pointer;font-weight:bold}
.nd-label{font-size:11px;font-weight:bold;color:#555;margin-top:3px}
.nd-badges{display:flex;flex-wrap:wrap;gap:4px;margin:2px 0}
.nd-b{display:inline-block;padding:2px 7px;border-radius:10px;font-size:11.5px;
 border:1px solid rgba(0,0,0,.15)}
.nd-b-present{background:#c62828;color:#fff}.nd-b-absent{background:#c8e6c9;color:#1b5e20}
.nd-b-na{background:#eceff1;color:#455a64;font-style:italic}
.nd-b-sig{background:#ffebee;color:#b71c1c}
.nd-maps{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
table.nd-heat{border-collapse:collapse;font-size:12px}
table.nd-heat caption{text-align:left;font-weight:bold;font-size:12px;padding-bottom:2px}
table.nd-heat th{font-weight:normal;color:#444;padding:1px 4px;text-align:right;
 white-space:nowrap}
table.nd-heat thead th{text-align:center}
td.nd-c{width:58px;height:28px;text-align:center;border:1px solid #fff;position:relative;
 padding:0}
.nd-dense td.nd-c{width:14px;height:14px}
.nd-dense td.nd-c summary{font-size:0;padding:0;height:14px}
.nd-dense th{font-size:10px;padding:0 3px;line-height:14px}
td.nd-c summary{list-style:none;cursor:pointer;padding:6px 0;color:inherit}
td.nd-c summary::-webkit-details-marker{display:none}
.nd-passed{background:#66bb6a;color:#fff}.nd-failed{background:#e53935;color:#fff;
 font-weight:bold}
.nd-flaky{background:#ffca28;color:#000}.nd-error{background:#8e24aa;color:#fff}
.nd-skipped,.nd-not-measured{background:#e0e0e0;color:#757575}
.nd-other{background:#90a4ae;color:#000}
.nd-pop{position:absolute;z-index:20;right:0;top:100%;width:520px;overflow-wrap:anywhere;text-align:left;
 background:#fff;color:#222;border:1px solid #999;box-shadow:0 2px 8px rgba(0,0,0,.3);
 padding:6px 8px;font-weight:normal;font-size:12px}
.nd-legend{display:flex;gap:8px;flex-wrap:wrap;font-size:11px;margin-top:4px}
.nd-legend span{padding:1px 6px}
table.nd-nodes{border-collapse:collapse;font-size:11.5px;margin-top:4px}
table.nd-nodes th,table.nd-nodes td{border:1px solid #ddd;padding:2px 5px;vertical-align:middle}
table.nd-nodes th{background:#f5f5f5;font-weight:normal;color:#333}
table.nd-nodes thead th{font-size:10.5px;overflow-wrap:anywhere;max-width:80px}
table.nd-nodes td.nd-c{width:auto;min-width:36px;height:26px}
table.nd-nodes tr>td.nd-c:nth-child(-n+6) .nd-pop{left:0;right:auto}
table.nd-nodes td.nd-here{min-width:200px;font-size:11px}
.nd-side{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.nd-side>div{border:1px solid #ddd;padding:6px 10px}
.nd-side .nd-big{font-size:20px;font-weight:bold}
table.nd-steps{border-collapse:collapse;font-size:12px;width:100%}
table.nd-steps th,table.nd-steps td{border:1px solid #ddd;padding:2px 5px;text-align:left;
 vertical-align:top}
.nd-muted{color:#666}
.netdoctor-evidence pre{white-space:pre-wrap;overflow-wrap:anywhere}
#results-table .log{white-space:pre-wrap;overflow-wrap:anywhere}
@media print{
 body{display:block;min-width:0;margin:0}
 .controls,.filter,.summary__reload,.nd-pop,#environment,#environment-header{display:none}
 #netdoctor{max-width:none}
 .nd-banner,.nd-b,td.nd-c,.nd-legend span{-webkit-print-color-adjust:exact;
  print-color-adjust:exact}
 .nd-grid{display:block}
 .nd-cause,table.nd-heat,table.nd-nodes tr{break-inside:avoid}
 #netdoctor pre{font-size:9.5pt}
 table.nd-nodes{table-layout:fixed;width:100%;font-size:8pt}
 table.nd-nodes td.nd-c,table.nd-nodes td.nd-here{min-width:0}
 table.nd-nodes td.nd-here,table.nd-nodes thead th:last-child{width:18%}
 details.nd-more{display:block}
 details.nd-more>*{display:block}
}
"""

SCRIPT = """
document.addEventListener('toggle', function (e) {
  var d = e.target;
  if (!d.open || !d.closest('td.nd-c')) return;
  document.querySelectorAll('td.nd-c details[open]').forEach(function (o) {
    if (o !== d) o.open = false;
  });
}, true);
window.addEventListener('beforeprint', function () {
  document.querySelectorAll('#netdoctor details.nd-more').forEach(function (d) {
    d.open = true;
  });
});
"""
"""Keeps one cell's evidence open at a time; opens collapsed causes before printing."""
