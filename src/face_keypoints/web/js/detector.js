// BlazeFace short-range, as runtime/detector.py runs it: the same anchors, decoding,
// weighted non-maximum suppression, photo zoom pass and detection-to-crop fit. The numbers
// (strides, thresholds, the fit) come from page.json, which the server builds from the
// Python module, so the two cannot drift apart.

import {
  cropMatrix, iou, letterboxMatrix, invert, square, transformPoints,
} from "./geometry.js";
import { toInput, warp } from "./pixels.js";

/** (N, 2) anchor centres in [0, 1] input coordinates, in the model's output order. */
export function ssdAnchors(spec) {
  const centres = [];
  let i = 0;
  while (i < spec.strides.length) {
    const stride = spec.strides[i];
    let j = i;
    while (j < spec.strides.length && spec.strides[j] === stride) j++;
    const cells = Math.ceil(spec.size / stride);
    const repeat = (j - i) * spec.anchors_per_layer;
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let r = 0; r < repeat; r++) centres.push([(x + 0.5) / cells, (y + 0.5) / cells]);
      }
    }
    i = j;
  }
  return centres;
}

/** Merge overlapping candidates into one detection each, best first: every candidate
 * overlapping the best remaining one by more than `threshold` IoU is folded into it, box
 * and keypoints averaged by score (MediaPipe's WEIGHTED suppression). */
export function weightedNms(candidates, threshold) {
  let remaining = [...candidates].sort((p, q) => q.score - p.score);
  const merged = [];
  while (remaining.length) {
    const overlaps = iou(remaining[0].box, remaining.map((c) => c.box)).map((v) => v > threshold);
    const group = remaining.filter((_, k) => overlaps[k]);
    const total = group.reduce((sum, c) => sum + c.score, 0);
    const box = [0, 0, 0, 0];
    const keypoints = group[0].keypoints.map(() => [0, 0]);
    for (const c of group) {
      const w = c.score / total;
      for (let k = 0; k < 4; k++) box[k] += w * c.box[k];
      c.keypoints.forEach(([x, y], k) => { keypoints[k][0] += w * x; keypoints[k][1] += w * y; });
    }
    merged.push({ box, score: group[0].score, keypoints });
    remaining = remaining.filter((_, k) => !overlaps[k]);
  }
  return merged;
}

const logit = (score) => Math.log(score / (1 - score));

export class BlazeFace {
  /** `runner` is the compiled detector (runtime.js), `spec` page.json's detector;
   * `zoomed` an async function giving the detector compiled for zoom x its input size
   * (asked for on the first photo large enough to need it). */
  constructor(runner, spec, zoomed = null) {
    this.runner = runner;
    this.spec = spec;
    this.zoomed = zoomed;
    this.zoomedReady = null;
    this.anchors = ssdAnchors(spec);
    this.minScore = spec.min_score; // the page's confidence setting may raise or lower it
    const byWidth = runner.outputs.map((o, k) => [o.shape[o.shape.length - 1], k])
      .sort((p, q) => q[0] - p[0]);
    [this.regressorsAt, this.scoresAt] = byWidth.map(([, k]) => k);
    if (runner.outputs[this.regressorsAt].shape[1] !== this.anchors.length) {
      throw new Error(`the detector has ${runner.outputs[this.regressorsAt].shape[1]} ` +
                      `anchors, expected ${this.anchors.length}`);
    }
    this.ms = 0; // time spent in detect() since the caller last reset it
  }

  /** Faces in a frame, best first; with `region` (a square), only in that square,
   * resampled to the input; `minScore` overrides the detector's threshold. */
  async detect(frame, region = null, minScore = null) {
    const start = performance.now();
    const size = this.spec.size;
    const matrix = region === null ? letterboxMatrix(frame.width, frame.height, size)
      : cropMatrix(region, size);
    const input = toInput(warp(frame, matrix, size), this.spec.range);
    const outputs = await this.runner.run(input);
    const regressors = outputs[this.regressorsAt], logits = outputs[this.scoresAt];
    const floor = logit(minScore ?? this.minScore);
    const width = regressors.length / this.anchors.length;
    const candidates = [];
    for (let a = 0; a < this.anchors.length; a++) {
      if (!(logits[a] > floor)) continue;
      const raw = regressors.subarray(a * width, (a + 1) * width);
      const ax = this.anchors[a][0] * size - 0.5, ay = this.anchors[a][1] * size - 0.5;
      const cx = ax + raw[0], cy = ay + raw[1], hw = raw[2] / 2, hh = raw[3] / 2;
      const keypoints = [];
      for (let k = 0; k < this.spec.keypoints.length; k++) {
        keypoints.push([ax + raw[4 + 2 * k], ay + raw[5 + 2 * k]]);
      }
      const clipped = Math.min(Math.max(logits[a], -100), 100);
      candidates.push({ box: [cx - hw, cy - hh, cx + hw, cy + hh],
                        score: 1 / (1 + Math.exp(-clipped)), keypoints });
    }
    const back = invert(matrix);
    const faces = weightedNms(candidates, this.spec.iou_threshold).map((d) => {
      const [[x0, y0], [x1, y1]] = transformPoints([[d.box[0], d.box[1]], [d.box[2], d.box[3]]], back);
      return { box: [x0, y0, x1, y1], score: d.score, keypoints: transformPoints(d.keypoints, back) };
    });
    this.ms += performance.now() - start;
    return faces;
  }

  /** detect() plus a second pass over the whole image at `zoom` x the input size, for
   * photos: a face smaller than about a tenth of the image is missed by the first pass
   * (the model is made for faces near the camera); the second halves that. A face it
   * adds is kept when the first pass did not find it already. A close-up (every face of
   * the first pass at least `close_up` of the longer side) skips the second pass. */
  async detectPhoto(frame) {
    const found = await this.detect(frame);
    const longer = Math.max(frame.width, frame.height);
    if (longer < this.spec.zoom * this.spec.size || !this.zoomed) return found;
    if (found.length && Math.min(...found.map((d) => d.box[2] - d.box[0]))
        >= this.spec.close_up * longer) {
      return found;
    }
    const zoomed = await this.zoomedPass();
    const floor = Math.max(this.spec.zoom_min_score, this.minScore);
    const start = zoomed.ms;
    for (const detection of await zoomed.detect(frame, null, floor)) {
      if (found.every((kept) => covered(detection.box, kept.box) < 0.5)) found.push(detection);
    }
    this.ms += zoomed.ms - start;
    return found.sort((p, q) => q.score - p.score);
  }

  /** The detector of detectPhoto's second pass, compiled once and run once on a black
   * frame (its first run is slow); the page asks for it early, once a frame is shown. */
  zoomedPass() {
    this.zoomedReady ??= (async () => {
      const size = this.spec.zoom * this.spec.size;
      const detector = new BlazeFace(await this.zoomed(), { ...this.spec, size });
      await detector.detect({ data: new Uint8ClampedArray(size * size * 4), width: size,
                              height: size });
      return detector;
    })();
    return this.zoomedReady;
  }
}

/** The landmark model's crop for a detection: `scale` x the landmark box that the fit
 * (page.json's box_fit, from benchmarks/detectors.py --fit) estimates from it. */
export function landmarkSquare(detection, spec, scale) {
  const box = detection.box;
  const side = box[2] - box[0];
  const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
  const features = [1];
  for (const [x, y] of detection.keypoints) features.push((x - cx) / side, (y - cy) / side);
  const [dx, dy, logRatio] = [0, 1, 2].map((c) => {
    const value = features.reduce((sum, v, r) => sum + v * spec.box_fit[r][c], 0);
    return Math.min(Math.max(value, spec.box_range[0][c]), spec.box_range[1][c]);
  });
  return square(cx + dx * side, cy + dy * side, side * Math.exp(logRatio) * scale);
}

function covered(box, other) {
  const w = Math.max(0, Math.min(box[2], other[2]) - Math.max(box[0], other[0]));
  const h = Math.max(0, Math.min(box[3], other[3]) - Math.max(box[1], other[1]));
  return w * h / Math.max((box[2] - box[0]) * (box[3] - box[1]), 1e-9);
}
