// Per-frame times, averaged over the last frames, and frames per second.

export class FrameStats {
  constructor(window = 30) {
    this.window = window;
    this.reset();
  }

  reset() {
    this.samples = []; // {detector, landmarks, model, drawing, frame, end} in ms
  }

  add(sample) {
    this.samples.push({ ...sample, end: performance.now() });
    if (this.samples.length > this.window) this.samples.shift();
  }

  /** The mean of `key` over the window, in ms. */
  mean(key) {
    if (!this.samples.length) return NaN;
    return this.samples.reduce((sum, s) => sum + s[key], 0) / this.samples.length;
  }

  /** Frames finished per second over the window (NaN under two frames). */
  fps() {
    const n = this.samples.length;
    if (n < 2) return NaN;
    return (n - 1) * 1000 / (this.samples[n - 1].end - this.samples[0].end);
  }
}
