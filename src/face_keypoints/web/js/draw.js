// Points and contours on the page's canvas, sized to each face as `predict` draws them.
// Contours come from page.json (schemes.py's), so the page hard-codes no point index.

/** Draw each face's contours (when its scheme has some) and points onto `context`. */
export function drawFaces(context, faces, schemes, colours) {
  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  for (const face of faces) {
    const size = Math.max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1);
    const scheme = schemes[face.scheme];
    // Canvas pixel centres sit at +0.5; ours at integers.
    const at = (k) => [face.points[k][0] + 0.5, face.points[k][1] + 0.5];
    context.strokeStyle = rgb(colours.lines);
    context.lineWidth = Math.max(1, Math.round(size / 150));
    context.lineJoin = "round";
    (scheme?.contours ?? []).forEach((contour, c) => {
      context.beginPath();
      contour.forEach((k, i) => (i ? context.lineTo(...at(k)) : context.moveTo(...at(k))));
      if (scheme.closed[c]) context.closePath();
      context.stroke();
    });
    context.fillStyle = rgb(colours.points);
    const radius = Math.max(1, size / 90);
    face.points.forEach((_, k) => {
      context.beginPath();
      context.arc(...at(k), radius, 0, 2 * Math.PI);
      context.fill();
    });
  }
}
