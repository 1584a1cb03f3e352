// Squares, 2x3 affines and points: geometry.py's crop rule, as the page needs it.
//
// A matrix is [a, b, c, d, e, f] for [[a, b, c], [d, e, f]]; points are [x, y] pairs in
// pixels, pixel centres at integers (as in OpenCV and in our crops).

/** A square region of an image: centre and side in pixels; `angle` (degrees) the face's
 * roll, which an aligned model's crop undoes (0: an upright crop). */
export function square(cx, cy, side, angle = 0) {
  return { cx, cy, side, angle };
}

/** [x0, y0, x1, y1] of points. */
export function landmarkBox(points) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y);
    x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

/** The square of side scale x the longer box side, centred on the box. */
export function squareAround(box, scale) {
  const [x0, y0, x1, y1] = box;
  return square((x0 + x1) / 2, (y0 + y1) / 2, Math.max(x1 - x0, y1 - y0) * scale);
}

/** The affine that maps image pixels into a size x size crop of `sq`, rotated about its
 * centre by its angle, so that a line at that angle comes out level (geometry.py's
 * model_matrix). */
export function cropMatrix(sq, size) {
  const s = size / sq.side;
  const theta = sq.angle * (Math.PI / 180); // as numpy.deg2rad
  const cos = Math.cos(theta) * s, sin = Math.sin(theta) * s;
  return [cos, sin, size / 2 - (cos * sq.cx + sin * sq.cy),
          -sin, cos, size / 2 - (-sin * sq.cx + cos * sq.cy)];
}

/** The angle in degrees (image axes, y down) of the line from point `from` to `to`. */
export function angleOf(from, to) {
  return Math.atan2(to[1] - from[1], to[0] - from[0]) * (180 / Math.PI); // numpy.degrees
}

/** The mean of points `indices` of `points`. */
export function centre(points, indices) {
  const sum = indices.reduce(([x, y], i) => [x + points[i][0], y + points[i][1]], [0, 0]);
  return [sum[0] / indices.length, sum[1] / indices.length];
}

/** The affine that puts a whole width x height image into a size x size square input,
 * aspect ratio kept and centred (black bars): BlazeFace's letterbox. */
export function letterboxMatrix(width, height, size) {
  const s = size / Math.max(width, height);
  const ox = (size - s * width) / 2, oy = (size - s * height) / 2;
  return [s, 0, ox + 0.5 * s - 0.5, 0, s, oy + 0.5 * s - 0.5];
}

export function invert(m) {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  const ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
  return [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)];
}

/** The affine that applies `inner` first, then `outer`. */
export function compose(outer, inner) {
  const [a, b, c, d, e, f] = outer;
  const [p, q, r, s, t, u] = inner;
  return [a * p + b * s, a * q + b * t, a * r + b * u + c,
          d * p + e * s, d * q + e * t, d * r + e * u + f];
}

export function transformPoints(points, m) {
  return points.map(([x, y]) => [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]]);
}

/** Intersection over union of one box with each of `boxes`, all [x0, y0, x1, y1]. */
export function iou(box, boxes) {
  const area = (box[2] - box[0]) * (box[3] - box[1]);
  return boxes.map((other) => {
    const w = Math.max(0, Math.min(box[2], other[2]) - Math.max(box[0], other[0]));
    const h = Math.max(0, Math.min(box[3], other[3]) - Math.max(box[1], other[1]));
    const inter = w * h;
    const areas = (other[2] - other[0]) * (other[3] - other[1]);
    return inter / Math.max(area + areas - inter, 1e-9);
  });
}

/** [x0, y0, x1, y1] of a square. */
export function corners(sq) {
  const half = sq.side / 2;
  return [sq.cx - half, sq.cy - half, sq.cx + half, sq.cy + half];
}
