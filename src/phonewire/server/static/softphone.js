// The softphone page: microphone -> capture worklet -> raw PCM over /ws; bot audio -> playback
// worklet (jitter buffer, marks acknowledged when played, clear on barge-in); keypad as DTMF
// messages; the call's transcript and latency from the side channel (docs/softphone.md).
import { latencyChart, legend } from "./chart.js";
import { streamEvents } from "./sse.js";

const $ = (id) => document.getElementById(id);
//: Bound on audio waiting in the socket: beyond it, microphone frames are dropped, not queued.
const MAX_SOCKET_BUFFER = 64 * 1024;

// What tests (and curious developers) can read: window.phonewireSoftphone.
const state = {
  status: "idle", callId: null, playback: { playedSecs: 0, rms: 0, peak: 0, underruns: 0 },
  marksAcked: 0, clears: 0, framesSent: 0, digits: "", transcript: [], turns: [], closeCode: null, error: null,
};
window.phonewireSoftphone = state;

let call = null;

function setStatus(status, text) {
  state.status = status;
  document.body.dataset.status = status;
  $("status").textContent = text;
  const inCall = status === "connecting" || status === "live";
  $("call").disabled = inCall;
  $("hangup").disabled = !inCall;
  $("mute").disabled = status !== "live";
  for (const b of $("keypad").querySelectorAll("button")) b.disabled = status !== "live";
}

function readKey() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get("key");
  if (fromHash) {
    sessionStorage.setItem("phonewire-softphone-key", fromHash);
    history.replaceState(null, "", location.pathname + location.search); // keep it out of the address bar
  }
  const key = sessionStorage.getItem("phonewire-softphone-key");
  if (key) {
    $("key").value = key;
    $("key-field").hidden = true;
  }
}

async function mint(key) {
  const response = await fetch("/softphone/token", {
    method: "POST", headers: { Authorization: `Bearer ${key}` }, cache: "no-store",
  });
  if (response.status === 401) throw new Error("the softphone key was not accepted");
  if (response.status === 429) throw new Error("too many calls just now; wait a little and try again");
  if (!response.ok) throw new Error(`the server refused the call (HTTP ${response.status})`);
  return response.json();
}

async function startCall(event) {
  event.preventDefault();
  if (call) return;
  const key = $("key").value.trim();
  const rate = Number($("rate").value);
  resetView();
  setStatus("connecting", "Connecting…");
  try {
    const grant = await mint(key);
    sessionStorage.setItem("phonewire-softphone-key", key);
    call = await openCall(grant, rate);
  } catch (err) {
    state.error = String(err.message || err);
    await endCall(`Call failed: ${state.error}`);
  }
}

async function openCall(grant, rate) {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
  });
  const context = new AudioContext({ latencyHint: "interactive" });
  await context.audioWorklet.addModule("/pages/static/capture-worklet.js");
  await context.audioWorklet.addModule("/pages/static/playback-worklet.js");
  const capture = new AudioWorkletNode(context, "phonewire-capture", { processorOptions: { rate } });
  const playback = new AudioWorkletNode(context, "phonewire-playback", {
    processorOptions: { rate }, outputChannelCount: [1],
  });
  const source = context.createMediaStreamSource(media);
  source.connect(capture);
  playback.connect(context.destination);
  await context.resume();

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${grant.ws_path}`);
  ws.binaryType = "arraybuffer";
  const current = { grant, media, context, capture, playback, ws, events: new AbortController(), muted: false };
  state.callId = grant.call_id;

  const send = (obj) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); };
  current.send = send;
  capture.port.onmessage = (e) => {
    if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_SOCKET_BUFFER) return;
    ws.send(e.data);
    state.framesSent += 1;
  };
  playback.port.onmessage = (e) => {
    const m = e.data;
    if (m.type === "stats") {
      state.playback = m;
      $("played").textContent = `bot audio played: ${m.playedSecs.toFixed(1)} s`;
    } else if (m.type === "mark") {
      send({ event: "mark", name: m.name });
      state.marksAcked += 1;
    } else if (m.type === "cleared") {
      for (const name of m.marks) { send({ event: "mark", name }); state.marksAcked += 1; }
      send({ event: "cleared" });
    }
  };
  ws.onopen = () => {
    const start = { event: "start", call_id: grant.call_id, sample_rate: rate, custom_parameters: {} };
    if (grant.token) start.custom_parameters[grant.token_parameter] = grant.token;
    ws.send(JSON.stringify(start));
    setStatus("live", "In a call. Speak to the bot; it hears you through this page.");
    streamEvents(grant.events_path, { Authorization: `Bearer ${grant.events_key}` }, onCallEvent, current.events.signal)
      .catch(() => {}); // the stream ends with the call (or the page); the call goes on without it
  };
  ws.onmessage = (e) => {
    if (typeof e.data !== "string") {
      playback.port.postMessage(e.data, [e.data]);
      return;
    }
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    if (m.event === "mark") playback.port.postMessage({ type: "mark", name: m.name });
    else if (m.event === "clear") { playback.port.postMessage({ type: "clear" }); state.clears += 1; }
    // "dtmf" (tones to play) and "message" (the bot's own) are not shown; a client may ignore them.
  };
  ws.onclose = (e) => {
    state.closeCode = e.code;
    if (call === current) endCall(e.code === 1000 ? "Call ended." : `Call ended (${e.code}${e.reason ? ": " + e.reason : ""}).`);
  };
  return current;
}

async function endCall(text) {
  const current = call;
  call = null;
  if (current) {
    current.ws.onclose = null;
    if (current.ws.readyState === WebSocket.OPEN) {
      current.send({ event: "stop", reason: "hangup" });
      current.ws.close(1000, "hangup");
    } else if (current.ws.readyState === WebSocket.CONNECTING) {
      current.ws.close();
    }
    current.media.getTracks().forEach((t) => t.stop());
    await current.context.close().catch(() => {});
    setTimeout(() => current.events.abort(), 3000); // let the "ended" event arrive first
  }
  setStatus("ended", text);
}

function sendDigit(digit) {
  if (!call || state.status !== "live") return;
  call.send({ event: "dtmf", digit });
  state.digits += digit;
  $("keys-sent").textContent = `Keys sent: ${state.digits}`;
}

function onCallEvent(event) {
  if (event.type === "snapshot") {
    const view = event.live[0];
    if (view) { view.transcript.forEach(addLine); view.turn_list.forEach(addTurn); showSpeaking(view.speaking); }
  } else if (event.type === "transcript") addLine(event.line);
  else if (event.type === "turn") addTurn(event.turn);
  else if (event.type === "call") showSpeaking(event.call.speaking);
  else if (event.type === "ended") { state.outcome = event.call.outcome; showSpeaking(null); }
}

function showSpeaking(who) {
  $("speaking").textContent = who === "bot" ? "The bot is speaking" : who === "caller" ? "You are speaking" : "—";
}

function addLine(line) {
  state.transcript.push(line);
  const item = document.createElement("li");
  item.className = `line ${line.who}`;
  const who = document.createElement("strong");
  who.textContent = line.who === "bot" ? "Bot: " : "You: ";
  item.append(who, document.createTextNode(line.text + (line.interrupted ? " (interrupted)" : "")));
  $("transcript").append(item);
}

function addTurn(turn) {
  state.turns.push(turn);
  const item = document.createElement("li");
  const ms = turn.response_ms == null ? "—" : `${Math.round(turn.response_ms)} ms`;
  item.textContent = `Turn ${turn.index}: ${ms} until you heard the reply`;
  $("latency").append(item);
  const chart = $("chart");
  chart.replaceChildren(latencyChart(state.turns), legend());
}

function resetView() {
  Object.assign(state, { callId: null, marksAcked: 0, clears: 0, framesSent: 0, digits: "", transcript: [], turns: [],
    closeCode: null, error: null, outcome: null, playback: { playedSecs: 0, rms: 0, peak: 0, underruns: 0 } });
  for (const id of ["transcript", "latency", "chart"]) $(id).replaceChildren();
  $("keys-sent").textContent = "";
  $("played").textContent = "";
}

function toggleMute() {
  if (!call) return;
  call.muted = !call.muted;
  call.capture.port.postMessage({ type: "mute", muted: call.muted });
  $("mute").setAttribute("aria-pressed", String(call.muted));
  $("mute").textContent = call.muted ? "Unmute" : "Mute";
}

readKey();
setStatus("idle", "Not in a call.");
$("call-form").addEventListener("submit", startCall);
$("hangup").addEventListener("click", () => endCall("You hung up."));
$("mute").addEventListener("click", toggleMute);
$("keypad").addEventListener("click", (e) => { const d = e.target.closest("button")?.dataset.digit; if (d) sendDigit(d); });
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  if (/^[0-9*#]$/.test(e.key)) sendDigit(e.key);
});
