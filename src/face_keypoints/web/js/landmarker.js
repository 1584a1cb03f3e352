// A landmark model and the crop it was trained on, read from its model.json: input size,
// value range and crop scale, and one output per scheme (x0, y0, x1, y1, ... normalised
// to the crop). As runtime/landmarker.py: image + face square -> points in pixels.

import { cropMatrix, invert, landmarkBox, squareAround, transformPoints } from "./geometry.js";
import { toInput, warp } from "./pixels.js";

export class Landmarker {
  /** `runner` is the compiled model (runtime.js), `card` its model.json. */
  constructor(runner, card) {
    this.runner = runner;
    this.size = card.input.size;
    this.range = card.input.range ?? [0, 255];
    this.scale = card.input.crop.scale;
    const shape = Array.from(runner.inputs[0].shape);
    if (shape.join() !== [1, this.size, this.size, 3].join()) {
      throw new Error(`the model's input is ${shape.join("x")}, but model.json says ` +
                      `${this.size} px RGB`);
    }
    // An output is found by the tensor name model.json gives, else by its size 2K, as
    // the Python runtime does. Outputs of another kind than points (presence,
    // visibility; entries without a kind are points) are not read here yet.
    this.outputs = {};
    for (const output of card.outputs.filter((o) => (o.kind ?? "points") === "points")) {
      const k = output.num_points;
      const index = runner.outputs.findIndex((o) => (output.tensor ? o.name === output.tensor
        : o.shape.reduce((p, q) => p * q, 1) === 2 * k));
      if (index < 0) {
        throw new Error(`model.json lists scheme ${output.scheme} (${k} points), but the ` +
                        `model has no output ${output.tensor ?? `of size ${2 * k}`}`);
      }
      this.outputs[output.scheme] = { index, k, names: output.point_names };
    }
    this.schemes = Object.keys(this.outputs);
    this.scheme = this.schemes[0];
    this.ms = 0; // crop + model + decoding, since the caller last reset it
    this.modelMs = 0; // the model alone (run and read-back)
  }

  /** Points in image pixels of the face framed by square `sq`, in the current scheme. */
  async points(frame, sq) {
    const start = performance.now();
    const matrix = cropMatrix(sq, this.size);
    const input = toInput(warp(frame, matrix, this.size), this.range);
    const outputs = await this.runner.run(input);
    this.modelMs += this.runner.lastMs;
    const { index, k } = this.outputs[this.scheme];
    const flat = outputs[index];
    const crop = Array.from({ length: k },
      (_, i) => [flat[2 * i] * this.size, flat[2 * i + 1] * this.size]);
    const points = transformPoints(crop, invert(matrix));
    this.ms += performance.now() - start;
    return points;
  }

  /** The training crop around landmarks: where a second pass, or the next frame of a
   * tracked face, looks. */
  cropSquare(points) {
    return squareAround(landmarkBox(points), this.scale);
  }

  /** Points of a detected face: a first pass on the crop the detection implies, then a
   * second on the crop around the first pass's landmarks (frames profiles as training). */
  async detectedPoints(frame, square) {
    const first = await this.points(frame, square);
    return this.points(frame, this.cropSquare(first));
  }
}
