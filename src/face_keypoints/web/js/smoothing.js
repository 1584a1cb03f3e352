// The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), as runtime/smoothing.py:
// a low-pass filter whose cutoff rises with speed, speed measured in face sizes per
// second, so a still face is steady and a moving one lags little.

function alpha(cutoff, dt) {
  const tau = 1 / (2 * Math.PI * cutoff);
  return 1 / (1 + tau / dt);
}

export class OneEuroFilter {
  /** `params`: {min_cutoff, beta, d_cutoff} (page.json's smoothing). */
  constructor(params) {
    this.params = params;
    this.value = null;
    this.speed = null;
    this.time = 0;
  }

  /** The filtered points at `time` seconds; `scale` is the face size in pixels. */
  filter(points, time, scale) {
    const value = points.flat();
    if (this.value === null || value.length !== this.value.length) {
      this.value = value;
      this.speed = value.map(() => 0);
      this.time = time;
      return points.map((p) => [...p]);
    }
    const dt = time - this.time;
    if (dt > 0) { // a repeated or out-of-order timestamp: nothing new to filter
      const { min_cutoff: minCutoff, beta, d_cutoff: dCutoff } = this.params;
      const aSpeed = alpha(dCutoff, dt);
      for (let i = 0; i < value.length; i++) {
        const speed = (value[i] - this.value[i]) / dt;
        this.speed[i] += aSpeed * (speed - this.speed[i]);
        const cutoff = minCutoff + beta * Math.abs(this.speed[i]) / Math.max(scale, 1e-9);
        this.value[i] += alpha(cutoff, dt) * (value[i] - this.value[i]);
      }
      this.time = time;
    }
    return points.map((_, k) => [this.value[2 * k], this.value[2 * k + 1]]);
  }
}
