// FaceLandmarker, as runtime/api.py's: every face of a photo (`detect`), or of the next
// frame of a stream (`track`: tracking and One Euro smoothing), in the JSON of `predict`.

import { landmarkBox, square } from "./geometry.js";
import { BlazeFace } from "./detector.js";
import { Landmarker } from "./landmarker.js";
import { Tracker } from "./tracker.js";

export class FaceLandmarker {
  /** `detector` and `model` are compiled runners (runtime.js), `zoomed` an async
   * function that compiles the detector for photos (see BlazeFace); `card` is model.json
   * and `settings` page.json. */
  constructor(detector, model, card, settings, zoomed) {
    this.settings = settings;
    this.detector = new BlazeFace(detector, settings.detector, zoomed);
    this.landmarker = new Landmarker(model, card, settings);
    this.tracker = new Tracker(this.detector, this.landmarker, settings.tracking,
                               settings.smoothing);
    this.maxFaces = null;
  }

  /** The page's settings, as `predict`'s options: at most `maxFaces` faces (null: all),
   * best detector score first; One Euro smoothing of streams on or off; the detector's
   * score threshold (FaceLandmarker's min_score); the presence that keeps a track
   * (min_tracking_confidence). A stream starts again from them. */
  configure({ maxFaces, smoothing, minScore, minTrackingConfidence }) {
    this.maxFaces = maxFaces;
    this.tracker.maxFaces = maxFaces;
    this.tracker.minTrackingConfidence = minTrackingConfidence;
    this.tracker.smoothing = smoothing ? this.settings.smoothing : null;
    this.detector.minScore = minScore;
    this.tracker.reset();
  }

  get schemes() { return this.landmarker.schemes; }

  get scheme() { return this.landmarker.scheme; }

  /** Whether the model says how likely its crop frames a face (faces carry `presence`). */
  get hasPresence() { return this.landmarker.hasPresence; }

  /** Predict `name`'s points from now on (a model trained on several schemes). */
  setScheme(name) {
    if (!this.landmarker.outputs[name]) throw new Error(`the model has no scheme ${name}`);
    this.landmarker.scheme = name;
    this.tracker.reset();
  }

  /** Every face of a photo, best detector score first. */
  async detect(frame) {
    const faces = [];
    const found = await this.detector.detectPhoto(frame);
    for (const detection of found.slice(0, this.maxFaces ?? found.length)) {
      const reading = await this.landmarker.detected(frame, detection);
      faces.push(this.face(reading.points, detection.score, reading));
    }
    return faces;
  }

  /** The faces of the next frame of a stream, `time` in seconds. */
  async track(frame, time) {
    const tracks = await this.tracker.step(frame, time);
    return tracks.map((t) => this.face(t.output, t.score, t));
  }

  /** Start a new stream: forget the tracked faces. */
  reset() {
    this.tracker.reset();
  }

  /** Run both models once on a black frame: a backend's first run (shaders, buffers)
   * and the first pass through this page's pixel code (before the browser compiles it)
   * take several times longer than the next, and should not fall on the first frame. */
  async warmUp() {
    const size = this.settings.detector.size;
    const frame = { data: new Uint8ClampedArray(size * size * 4), width: size, height: size };
    await this.detector.detect(frame);
    await this.landmarker.read(frame, square(size / 2, size / 2, size));
    this.resetTimes();
  }

  /** Zero the time counters of the detector and the landmark model. */
  resetTimes() {
    this.detector.ms = 0;
    this.landmarker.ms = 0;
    this.landmarker.modelMs = 0;
  }

  /** A face as api.py's Face: `seen` (a reading or a track) gives its presence and
   * visibility (null where the model lacks those outputs) and the roll of its crop. */
  face(points, score, seen) {
    return { box: landmarkBox(points), score, scheme: this.landmarker.scheme, points,
             presence: seen.presence, visible: seen.visible, roll: seen.roll ?? 0 };
  }
}

/** A face as `predict` writes it to JSON (pixels to 0.01, score to 0.0001, presence and
 * visibility to 0.001, null where the model lacks the output; roll to 0.01 degree). */
export function faceJson(face) {
  const round = (v, digits) => Number(v.toFixed(digits));
  return { box: face.box.map((v) => round(v, 2)), score: round(face.score, 4),
           scheme: face.scheme, points: face.points.map(([x, y]) => [round(x, 2), round(y, 2)]),
           presence: face.presence === null ? null : round(face.presence, 3),
           visible: face.visible?.map((v) => round(v, 3)) ?? null,
           roll: round(face.roll, 2) };
}
