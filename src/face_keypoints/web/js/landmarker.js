// A landmark model and the crop it was trained on, read from its model.json: input size,
// value range, crop scale and alignment, one points output per scheme (x0, y0, x1, y1,
// ... normalised to the crop) and, where the model has them, a face-presence output and
// one visibility output per scheme. As runtime/landmarker.py: image + face square ->
// points in pixels, with the presence and visibility of that crop.

import { angleOf, centre, cropMatrix, invert, landmarkBox, squareAround, transformPoints }
  from "./geometry.js";
import { landmarkSquare } from "./detector.js";
import { toInput, warp } from "./pixels.js";

const EYES = ["right_eye", "left_eye"]; // the detector keypoints that give a face's roll

/** The index of `runner`'s output named `name`, else (points of a model.json that names
 * no outputs) the first of `size` values, as the Python runtime finds them; -1 if none. */
function outputIndex(runner, name, size = null) {
  const named = runner.outputs.findIndex((o) => o.name === name);
  if (named >= 0 || size === null) return named;
  return runner.outputs.findIndex((o) => o.shape.reduce((p, q) => p * q, 1) === size);
}

export class Landmarker {
  /** `runner` is the compiled model (runtime.js), `card` its model.json, `settings`
   * page.json (the detector's crop fit and keypoints, each scheme's pupils). */
  constructor(runner, card, settings) {
    this.runner = runner;
    this.size = card.input.size;
    this.range = card.input.range ?? [0, 255];
    this.scale = card.input.crop.scale;
    this.align = card.input.crop.align === true;
    this.hiddenBelow = settings.drawing.hidden_below; // visibility below it: not seen
    this.detectorSpec = settings.detector;
    this.eyes = EYES.map((name) => settings.detector.keypoints.indexOf(name));
    const shape = Array.from(runner.inputs[0].shape);
    if (shape.join() !== [1, this.size, this.size, 3].join()) {
      throw new Error(`the model's input is ${shape.join("x")}, but model.json says ` +
                      `${this.size} px RGB`);
    }
    const find = (name, size = null) => {
      const index = outputIndex(runner, name, size);
      if (index < 0) {
        throw new Error(`model.json lists the output ${name}${size ? ` (${size} values)` : ""}` +
                        ", which the model does not have");
      }
      return index;
    };
    this.outputs = {}; // {scheme: {index, k, visible (index or null), pupils}}
    this.presence = null; // the presence output's index, or null
    for (const output of card.outputs) {
      const kind = output.kind ?? "points"; // entries without a kind are points
      if (kind === "presence") this.presence = find(output.name);
      if (kind !== "points") continue;
      const k = output.num_points;
      const pupils = settings.schemes[output.scheme]?.pupils ?? null;
      if (this.align && !pupils) {
        throw new Error(`the model was trained on aligned crops, but scheme ` +
                        `${output.scheme} has no eye points to align them by`);
      }
      const visible = card.outputs.find((o) => o.kind === "visible"
                                        && o.scheme === output.scheme);
      this.outputs[output.scheme] = {
        index: find(output.name ?? `points_${output.scheme}`, 2 * k), k, pupils,
        visible: visible ? find(visible.name) : null };
    }
    this.schemes = Object.keys(this.outputs);
    this.scheme = this.schemes[0];
    this.ms = 0; // crop + model + decoding, since the caller last reset it
    this.modelMs = 0; // the model alone (run and read-back)
  }

  get hasPresence() { return this.presence !== null; }

  /** What the model says of the face framed by square `sq`, in the current scheme:
   * {points in image pixels, presence (or null), visible (per point, or null), roll
   * (the crop's angle: the face's roll for an aligned model, else 0)}. */
  async read(frame, sq) {
    const start = performance.now();
    const matrix = cropMatrix(sq, this.size);
    const input = toInput(warp(frame, matrix, this.size), this.range);
    const outputs = await this.runner.run(input);
    this.modelMs += this.runner.lastMs;
    const { index, k, visible } = this.outputs[this.scheme];
    const flat = outputs[index];
    const crop = Array.from({ length: k },
      (_, i) => [flat[2 * i] * this.size, flat[2 * i + 1] * this.size]);
    const reading = {
      points: transformPoints(crop, invert(matrix)),
      presence: this.hasPresence ? outputs[this.presence][0] : null,
      visible: visible === null ? null : Array.from(outputs[visible]),
      roll: sq.angle ?? 0 };
    this.ms += performance.now() - start;
    return reading;
  }

  /** The training crop around landmarks: where a second pass, or the next frame of a
   * tracked face, looks; for an aligned model, turned by the roll of their seen eyes
   * (`visible`, null without that output), upright when an eye is unseen (a profile,
   * which training left upright), as landmarker.py's crop_square. */
  cropSquare(points, visible = null) {
    const sq = squareAround(landmarkBox(points), this.scale);
    if (!this.align) return sq;
    const seen = (i) => visible === null || visible[i] >= this.hiddenBelow;
    const eyes = this.outputs[this.scheme].pupils.map((group) => group.filter(seen));
    if (eyes.some((group) => group.length === 0)) return sq;
    const [right, left] = eyes.map((group) => centre(points, group));
    return { ...sq, angle: angleOf(right, left) };
  }

  /** The crop a detection implies (the detector's fit); for an aligned model, turned by
   * the roll of the detector's eye keypoints. */
  detectionSquare(detection) {
    const sq = landmarkSquare(detection, this.detectorSpec, this.scale);
    if (!this.align) return sq;
    const [right, left] = this.eyes.map((k) => detection.keypoints[k]);
    return { ...sq, angle: angleOf(right, left) };
  }

  /** The reading of a detected face: a first pass on the crop the detection implies, then
   * a second on the crop around the first pass's landmarks (frames profiles as training). */
  async detected(frame, detection) {
    const first = await this.read(frame, this.detectionSquare(detection));
    return this.read(frame, this.cropSquare(first.points, first.visible));
  }
}
