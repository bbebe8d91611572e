// The softphone's speaker worklet: a small jitter buffer for the bot's audio.
//
// Wire-rate 16-bit frames are resampled (linear) to the context's rate and queued. Playback
// starts once PREBUFFER_SECS are queued and re-buffers after an underrun. A server "mark" is
// remembered at the queue's current end and reported once playback passes it, so the page
// echoes it when the audio before it has really played; "clear" drops the queue and reports
// every pending mark, in order. The queue is bounded (MAX_QUEUE_SECS; the oldest audio goes).
// Every ~200 ms it reports what it played: seconds of audio, RMS and peak (for tests and the
// page's meter).
const PREBUFFER_SECS = 0.06;
const MAX_QUEUE_SECS = 20;

class PhonewirePlayback extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.rate = options.processorOptions.rate;
    this.step = this.rate / sampleRate;
    this.chunks = [];
    this.head = 0; // read offset into chunks[0]
    this.queued = 0; // samples queued
    this.written = 0; // samples ever queued (mark positions)
    this.played = 0; // samples ever played from the queue
    this.marks = [];
    this.playing = false;
    this.frac = 0;
    this.last = 0;
    this.sumSquares = 0;
    this.audioSamples = 0;
    this.peak = 0;
    this.underruns = 0;
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(data) {
    if (data instanceof ArrayBuffer) return this.enqueue(new Int16Array(data));
    if (data.type === "mark") this.marks.push({ name: data.name, at: this.written });
    else if (data.type === "clear") this.clear();
  }

  enqueue(pcm) {
    const src = new Float32Array(pcm.length + 1);
    src[0] = this.last;
    for (let i = 0; i < pcm.length; i++) src[i + 1] = pcm[i] / 32768;
    const out = [];
    let t = this.frac;
    while (t < pcm.length) {
      const i = Math.floor(t);
      const f = t - i;
      out.push(src[i] * (1 - f) + src[i + 1] * f);
      t += this.step;
    }
    this.frac = t - pcm.length;
    this.last = src[pcm.length];
    const chunk = Float32Array.from(out);
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.written += chunk.length;
    const max = MAX_QUEUE_SECS * sampleRate;
    while (this.queued > max && this.chunks.length > 1) {
      const dropped = this.chunks.shift();
      this.queued -= dropped.length - this.head;
      this.played += dropped.length - this.head;
      this.head = 0;
    }
  }

  clear() {
    this.played = this.written;
    this.chunks = [];
    this.head = 0;
    this.queued = 0;
    this.playing = false;
    const names = this.marks.map((m) => m.name);
    this.marks = [];
    this.port.postMessage({ type: "cleared", marks: names });
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.queued >= PREBUFFER_SECS * sampleRate) this.playing = true;
    let n = 0;
    if (this.playing) {
      while (n < out.length && this.chunks.length) {
        const chunk = this.chunks[0];
        const take = Math.min(out.length - n, chunk.length - this.head);
        for (let i = 0; i < take; i++) {
          const v = chunk[this.head + i];
          out[n + i] = v;
          this.sumSquares += v * v;
          const a = Math.abs(v);
          if (a > this.peak) this.peak = a;
        }
        n += take;
        this.head += take;
        if (this.head === chunk.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
      this.queued -= n;
      this.played += n;
      this.audioSamples += n;
      if (this.queued === 0) {
        this.playing = false;
        if (n < out.length) this.underruns += 1;
      }
    }
    for (let i = n; i < out.length; i++) out[i] = 0;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    while (this.marks.length && this.marks[0].at <= this.played) {
      this.port.postMessage({ type: "mark", name: this.marks.shift().name });
    }
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 5) {
      this.sinceReport = 0;
      this.port.postMessage({
        type: "stats",
        playedSecs: this.audioSamples / sampleRate,
        rms: this.audioSamples ? Math.sqrt(this.sumSquares / this.audioSamples) : 0,
        peak: this.peak,
        underruns: this.underruns,
        queuedSecs: this.queued / sampleRate,
      });
    }
    return true;
  }
}

registerProcessor("phonewire-playback", PhonewirePlayback);
