/// <reference lib="dom" />
/** The page's style sheet, laid out for 1280x800 and up. */
export const CSS = `
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 13px/1.35 system-ui, sans-serif; color: #1b1b1b; background: #fafafa; }
body { display: flex; flex-direction: column; }
header { padding: 6px 12px; border-bottom: 1px solid #ccc; background: #fff; }
h1 { font-size: 15px; margin: 0 0 4px; }
h2 { font-size: 14px; margin: 0; padding: 4px 8px; background: #eef; }
h3 { font-size: 12px; margin: 0 0 4px; text-transform: uppercase; letter-spacing: .04em; color: #444; }
.controls { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
.controls button { font: inherit; padding: 3px 10px; }
.controls input[type=range] { flex: 1; min-width: 240px; }
.slider { position: relative; flex: 1; display: flex; min-width: 240px; }
.slider .mark { position: absolute; top: -6px; width: 2px; height: 28px; background: #d00000; pointer-events: none; }
#step-label { font-family: ui-monospace, monospace; min-width: 28ch; }
#divergence { margin-top: 4px; color: #8a0000; }
#divergence.here { font-weight: bold; background: #ffe3e3; }
button:focus-visible, input:focus-visible, li button:focus-visible { outline: 3px solid #1f5fbf; outline-offset: 1px; }
main { flex: 1; display: flex; min-height: 0; }
.run { flex: 1; display: flex; min-width: 0; border-right: 1px solid #ccc; }
.runs-2 .run { flex-direction: column; }
.graph { flex: 1; min-width: 0; min-height: 0; background: #fff; position: relative; }
.side { width: 400px; display: flex; flex-direction: column; border-left: 1px solid #ddd; min-height: 0; }
.runs-2 .side { width: auto; height: 42%; flex-direction: row; border-left: 0; border-top: 1px solid #ddd; }
.side > section { padding: 6px 8px; overflow: auto; border-bottom: 1px solid #eee; min-height: 0; }
.side .trace { flex: 1.2; }
.side .selection { flex: 1; }
.side .groups { flex: 1.2; }
.runs-2 .side > section { flex: 1; border-right: 1px solid #eee; }
pre { margin: 0; font: 11px/1.3 ui-monospace, monospace; white-space: pre; }
dl { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 1px 8px; }
dt { font-weight: 600; color: #333; }
dd { margin: 0; word-break: break-word; }
ul { margin: 0; padding-left: 16px; }
/* A 2,000-device list: the browser lays out only the entries in view (devices too: a boot phase lists 2,000 on no group's list). */
.group-list li { content-visibility: auto; contain-intrinsic-size: auto 20px; list-style-position: inside; }
.group-list > li { contain-intrinsic-size: auto 40px; }
li button { font: inherit; border: 0; background: none; padding: 0 2px; cursor: pointer; text-align: left; color: #0b3d91; }
li button:hover { text-decoration: underline; }
li.changed > button, li.changed > span { background: #ffd1e8; }
li.selected > button { background: #dbe7ff; }
.tag { display: inline-block; padding: 0 4px; border-radius: 3px; font-size: 11px; margin-left: 4px; background: #eee; }
.tag.deferred { background: #ffd8a8; } .tag.failed { background: #ffc9c9; } .tag.acs { background: #ffdede; color: #a00; }
.tag.user { background: #e7d4f7; } .tag.kernel { background: #d7ecff; }
.bad { color: #a00000; }
.legend { font-size: 11px; color: #555; margin-top: 2px; }
`;
