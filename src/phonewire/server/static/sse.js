// Server-sent events over fetch, so a request can carry an Authorization header (EventSource
// cannot). Calls onEvent(object) for each "data:" event; resolves when the stream ends.
export async function streamEvents(url, headers, onEvent, signal) {
  const response = await fetch(url, { headers, signal, cache: "no-store" });
  if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) onEvent(JSON.parse(data));
    }
  }
}
