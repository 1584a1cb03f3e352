// Resampling a frame into a model input, as geometry.warp does in Python (OpenCV's
// warpAffine, bilinear, black outside the image; a strong shrink averages pixel blocks
// first), so that the page and `predict` feed the models the same pixels.
//
// A frame is {data, width, height}: RGBA bytes, as a canvas's getImageData gives them.
//
// The browser could shrink a large photo itself (createImageBitmap's resize, a canvas
// draw), faster, but not into the same pixels: its filters are not OpenCV's block means
// with OpenCV's rounding, and the points would move. Instead only the blocks a crop
// reads are averaged: a face crop of a large photo no longer averages the whole photo.

import { compose } from "./geometry.js";

/** RGB bytes (size x size x 3) of the crop that `matrix` (image -> crop) defines. */
export function warp(frame, matrix, size) {
  // (not {...frame}: an ImageData's fields are getters, which a spread leaves out)
  const { data, width: fullWidth, height: fullHeight } = frame;
  let source = { data, width: fullWidth, height: fullHeight, left: 0, top: 0,
                 stride: fullWidth };
  const shrink = 1 / Math.max(Math.hypot(matrix[0], matrix[3]), 1e-9);
  if (shrink >= 4) {
    const factor = Math.floor(shrink / 2);
    const width = Math.floor(frame.width / factor), height = Math.floor(frame.height / factor);
    if (width >= 2 && height >= 2) {
      // Pixel centre i of the small image lies at factor * i + (factor - 1) / 2.
      const half = (factor - 1) / 2;
      matrix = compose(matrix, [factor, 0, half, 0, factor, half]);
      source = averageBlocks(frame, factor, width, height,
                             footprint(invertLikeOpenCv(matrix), size, width, height));
    }
  }
  return bilinear(source, invertLikeOpenCv(matrix), size);
}

// The blocks [x0, x1) x [y0, y1) of a width x height image that a size x size crop
// through `inverse` (crop -> image) can tap, one more on every side.
function footprint(inverse, size, width, height) {
  const [a, b, c, d, e, f] = inverse;
  const xs = [], ys = [];
  for (const [x, y] of [[0, 0], [size, 0], [0, size], [size, size]]) {
    xs.push(a * x + b * y + c);
    ys.push(d * x + e * y + f);
  }
  const clamp = (v, high) => Math.min(Math.max(v, 0), high);
  return [clamp(Math.floor(Math.min(...xs)) - 1, width),
          clamp(Math.floor(Math.min(...ys)) - 1, height),
          clamp(Math.ceil(Math.max(...xs)) + 2, width),
          clamp(Math.ceil(Math.max(...ys)) + 2, height)];
}

/** Model input values from RGB bytes: byte 0 -> range[0], byte 255 -> range[1]. */
export function toInput(rgb, range) {
  const [low, high] = range;
  const scale = (high - low) / 255;
  const input = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) input[i] = rgb[i] * scale + low;
  return input;
}

// OpenCV's arithmetic (version 5's warpAffine), so that the crops are the same bytes:
// the inverse affine as warpAffine takes it, sample positions and bilinear interpolation
// in float32, rounded half to even; a tap outside the image counts as black
// (BORDER_CONSTANT 0). OpenCV 4's fixed-point warp differs from it by one grey level in
// about a tenth of the pixels. `frame` holds the pixels of a width x height image from
// column `left` and row `top` on, `stride` pixels a row: every pixel the crop taps.
function bilinear(frame, inverse, size) {
  const { data, width, height, left, top, stride } = frame;
  const out = new Uint8Array(size * size * 3);
  const f = Math.fround;
  const [a, b, c, d, e, g] = inverse.map(f);
  const row = stride * 4;
  const at = (x, y) => (y - top) * row + (x - left) * 4;
  const tap = (x, y, k) => (x >= 0 && x < width && y >= 0 && y < height
    ? data[at(x, y) + k] : 0);
  let o = 0;
  for (let y = 0; y < size; y++) {
    const by = f(b * y), ey = f(e * y);
    for (let x = 0; x < size; x++, o += 3) {
      const sx = f(f(f(a * x) + by) + c), sy = f(f(f(d * x) + ey) + g);
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      if (x0 < -1 || y0 < -1 || x0 >= width || y0 >= height) continue;
      const fx = f(sx - x0), fy = f(sy - y0);
      const inside = x0 >= 0 && y0 >= 0 && x0 + 1 < width && y0 + 1 < height;
      const i = at(x0, y0);
      for (let k = 0; k < 3; k++) {
        let v00, v01, v10, v11;
        if (inside) {
          v00 = data[i + k]; v01 = data[i + 4 + k];
          v10 = data[i + row + k]; v11 = data[i + row + 4 + k];
        } else {
          v00 = tap(x0, y0, k); v01 = tap(x0 + 1, y0, k);
          v10 = tap(x0, y0 + 1, k); v11 = tap(x0 + 1, y0 + 1, k);
        }
        const top = f(v00 + f(fx * (v01 - v00))), bottom = f(v10 + f(fx * (v11 - v10)));
        out[o + k] = roundEven(f(top + f(fy * f(bottom - top))));
      }
    }
  }
  return out;
}

// The inverse of a 2x3 affine, computed as OpenCV's warpAffine does (bit for bit).
function invertLikeOpenCv(m) {
  const [a, b, c, d, e, f] = m;
  let det = a * e - b * d;
  det = det !== 0 ? 1 / det : 0;
  const ia = e * det, ie = a * det, ib = -b * det, id = -d * det;
  return [ia, ib, -ia * c - ib * f, id, ie, -id * c - ie * f];
}

// Round half to even, as OpenCV's saturate_cast<int>(double).
function roundEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// OpenCV's INTER_AREA resize by a whole factor to width x height: the mean of each
// factor x factor block, a half rounded up for a factor of 2 (its own fast path) and to
// even for larger ones, as OpenCV 5 rounds them (measured on every factor from 2 to 64);
// only the blocks of `region` ([x0, y0, x1, y1] in blocks) are computed.
function averageBlocks(frame, factor, width, height, region) {
  const round = factor === 2 ? Math.round : roundEven;
  const { data } = frame;
  const [x0, y0, x1, y1] = region;
  const columns = Math.max(x1 - x0, 0), rows = Math.max(y1 - y0, 0);
  const out = new Uint8ClampedArray(columns * rows * 4);
  const area = factor * factor;
  const sums = new Float64Array(columns * 3);
  for (let y = 0; y < rows; y++) {
    sums.fill(0);
    for (let dy = 0; dy < factor; dy++) {
      let i = (((y0 + y) * factor + dy) * frame.width + x0 * factor) * 4;
      for (let x = 0; x < columns; x++) {
        for (let dx = 0; dx < factor; dx++, i += 4) {
          sums[x * 3] += data[i]; sums[x * 3 + 1] += data[i + 1]; sums[x * 3 + 2] += data[i + 2];
        }
      }
    }
    let o = y * columns * 4;
    for (let x = 0; x < columns; x++, o += 4) {
      out[o] = round(sums[x * 3] / area);
      out[o + 1] = round(sums[x * 3 + 1] / area);
      out[o + 2] = round(sums[x * 3 + 2] / area);
      out[o + 3] = 255;
    }
  }
  return { data: out, width, height, left: x0, top: y0, stride: columns };
}
