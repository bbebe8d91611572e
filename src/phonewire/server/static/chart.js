// The latency stages of each turn as an inline SVG chart (no library): one row per turn, a
// segment per stage from the previous stage to this one, the caller's wait at the row's end.
export const STAGES = [
  "vad_stop", "transcript", "turn_end", "llm_first_token", "tts_first_byte", "first_audio_sent", "first_audio_heard",
];
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function latencyChart(turns) {
  const rowH = 22, left = 56, width = 640, right = 70;
  const maxMs = Math.max(100, ...turns.map((t) => Math.max(0, ...Object.values(t.stages))));
  const scale = (ms) => left + (ms / maxMs) * (width - left - right);
  const height = rowH * turns.length + 24;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  svg.append(el("title", {}, `Latency stages of ${turns.length} turn(s), in milliseconds`));
  turns.forEach((turn, row) => {
    const y = row * rowH + 4;
    svg.append(el("text", { x: 0, y: y + 13, class: "chart-label" }, `turn ${turn.index}`));
    let prev = 0;
    STAGES.forEach((stage, i) => {
      const ms = turn.stages[stage];
      if (ms === undefined) return;
      const x = scale(prev), w = Math.max(1, scale(ms) - scale(prev));
      const rect = el("rect", { x, y, width: w, height: rowH - 6, class: `stage stage-${i}` });
      rect.append(el("title", {}, `${stage}: ${Math.round(ms)} ms`));
      svg.append(rect);
      prev = Math.max(prev, ms);
    });
    const total = turn.response_ms ?? prev;
    svg.append(el("text", { x: scale(prev) + 4, y: y + 13, class: "chart-label" }, `${Math.round(total)} ms`));
  });
  svg.append(el("text", { x: left, y: height - 4, class: "chart-axis" }, `0 … ${Math.round(maxMs)} ms from the caller's last word`));
  return svg;
}

export function legend() {
  const list = document.createElement("ul");
  list.className = "legend";
  STAGES.forEach((stage, i) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch stage-${i}`;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, document.createTextNode(stage.replaceAll("_", " ")));
    list.append(item);
  });
  return list;
}
