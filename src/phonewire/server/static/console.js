// The call console: one EventSource on /calls/events (a snapshot, then each change), the
// tables rebuilt from that state, durations ticking locally (no polling of the server).
import { latencyChart, legend } from "./chart.js";

const $ = (id) => document.getElementById(id);
const calls = new Map(); // id -> detail (summary + turn_list + transcript)
let selected = null;
window.phonewireConsole = { calls };

function upsert(summary) {
  const known = calls.get(summary.id) || { turn_list: [], transcript: [] };
  calls.set(summary.id, { ...known, ...summary });
  return calls.get(summary.id);
}

function onEvent(event) {
  if (event.type === "snapshot") {
    calls.clear();
    for (const view of [...event.live, ...event.ended]) calls.set(view.id, view);
  } else {
    const view = upsert(event.call);
    if (event.type === "turn") view.turn_list.push(event.turn);
    if (event.type === "transcript") view.transcript.push(event.line);
    if (event.type === "ended") view.endedAt = Date.now();
  }
  render();
}

const ms = (v) => (v == null ? "—" : `${Math.round(v)} ms`);
const secs = (v) => {
  const s = Math.max(0, Math.round(v || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};
const liveDuration = (view) => (view.live ? (Date.now() / 1000 - view.started) : view.duration);

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text ?? "—";
  row.append(td);
  return td;
}

function detailButton(row, view) {
  const td = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Show";
  button.setAttribute("aria-label", `Show call ${view.call_id || view.id}`);
  button.addEventListener("click", () => { selected = view.id; render(); $("detail-h").focus(); });
  td.append(button);
  row.append(td);
}

function render() {
  const views = [...calls.values()];
  const live = views.filter((v) => v.live).sort((a, b) => a.started - b.started);
  const ended = views.filter((v) => !v.live).sort((a, b) => b.started - a.started);
  $("live-count").textContent = `(${live.length})`;
  const liveBody = $("live").tBodies[0];
  liveBody.replaceChildren(...live.map((v) => {
    const row = document.createElement("tr");
    row.dataset.callId = v.call_id || "";
    cell(row, v.provider); cell(row, v.caller || v.call_id); cell(row, secs(liveDuration(v))).className = "duration";
    cell(row, v.speaking || "—"); cell(row, String(v.turns)); cell(row, ms(v.last_latency_ms));
    detailButton(row, v);
    return row;
  }));
  const endedBody = $("ended").tBodies[0];
  endedBody.replaceChildren(...ended.map((v) => {
    const row = document.createElement("tr");
    row.dataset.callId = v.call_id || "";
    cell(row, v.provider); cell(row, v.caller || v.call_id); cell(row, secs(v.duration));
    cell(row, String(v.turns)); cell(row, ms(v.last_latency_ms)); cell(row, v.outcome).className = "outcome";
    detailButton(row, v);
    return row;
  }));
  renderDetail();
}

function renderDetail() {
  const view = selected && calls.get(selected);
  $("detail").hidden = !view;
  if (!view) return;
  $("detail-h").textContent = `Call ${view.call_id || view.id}`;
  $("detail-meta").textContent = `${view.provider}, caller ${view.caller || "unknown"}, ${view.live ? "live" : view.outcome}, `
    + `${view.turns} turn(s), ${view.dtmf} key(s) pressed`;
  $("detail-chart").replaceChildren(
    ...(view.turn_list.length ? [latencyChart(view.turn_list), legend()] : [document.createTextNode("No answered turns yet.")]),
  );
  $("detail-transcript").replaceChildren(...view.transcript.map((line) => {
    const item = document.createElement("li");
    item.className = `line ${line.who}`;
    const who = document.createElement("strong");
    who.textContent = line.who === "bot" ? "Bot: " : "Caller: ";
    item.append(who, document.createTextNode(line.text));
    return item;
  }));
}

function tick() {
  for (const row of $("live").tBodies[0].rows) {
    const view = [...calls.values()].find((v) => v.live && (v.call_id || "") === row.dataset.callId);
    if (view) row.querySelector(".duration").textContent = secs(liveDuration(view));
  }
}

const source = new EventSource("/calls/events");
source.onopen = () => { $("conn").textContent = "Live: updates are pushed as calls change."; };
source.onerror = () => { $("conn").textContent = "Reconnecting…"; };
source.onmessage = (e) => onEvent(JSON.parse(e.data));
setInterval(tick, 1000); // local clock only: durations, not a server poll
