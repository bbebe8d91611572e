// The softphone's microphone worklet: the context's rate down to the wire rate (a box filter
// over each output sample's span, which is also the anti-alias filter), 16-bit, 20 ms frames
// posted to the page, which sends them as binary raw PCM frames (docs/raw-pcm.md).
class PhonewireCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.rate = options.processorOptions.rate;
    this.ratio = sampleRate / this.rate;
    this.frameSamples = Math.round(this.rate / 50);
    this.frame = new Int16Array(this.frameSamples);
    this.n = 0;
    this.pos = 0;
    this.acc = 0;
    this.count = 0;
    this.muted = false;
    this.port.onmessage = (e) => { if (e.data && e.data.type === "mute") this.muted = !!e.data.muted; };
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.acc += channel[i];
      this.count += 1;
      this.pos += 1;
      if (this.pos < this.ratio) continue;
      this.pos -= this.ratio;
      let v = this.muted ? 0 : this.acc / this.count;
      this.acc = 0;
      this.count = 0;
      v = Math.max(-1, Math.min(1, v));
      this.frame[this.n++] = v < 0 ? v * 32768 : v * 32767;
      if (this.n === this.frameSamples) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.n = 0;
      }
    }
    return true;
  }
}

registerProcessor("phonewire-capture", PhonewireCapture);
