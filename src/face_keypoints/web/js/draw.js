// Points and contours on the page's canvas, sized to each face as `predict` draws them
// (draw.py's draw_landmarks): a point the model says is hidden (visibility below
// page.json's hidden_below) is a ring, so what it saw and what it guessed can be told
// apart. Contours come from page.json (schemes.py's), so the page hard-codes no index.

/** Draw each face's contours (when its scheme has some) and points onto `context`;
 * `style` is page.json's drawing (colours, the hidden threshold). */
export function drawFaces(context, faces, schemes, style) {
  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  for (const face of faces) {
    const size = Math.max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1);
    const scheme = schemes[face.scheme];
    // Canvas pixel centres sit at +0.5; ours at integers.
    const at = (k) => [face.points[k][0] + 0.5, face.points[k][1] + 0.5];
    const thickness = Math.max(1, Math.round(size / 150));
    context.strokeStyle = rgb(style.lines);
    context.lineWidth = thickness;
    context.lineJoin = "round";
    (scheme?.contours ?? []).forEach((contour, c) => {
      context.beginPath();
      contour.forEach((k, i) => (i ? context.lineTo(...at(k)) : context.moveTo(...at(k))));
      if (scheme.closed[c]) context.closePath();
      context.stroke();
    });
    context.fillStyle = rgb(style.points);
    context.strokeStyle = rgb(style.hidden);
    const radius = Math.max(1, size / 90);
    const ring = Math.max(2.5, 1.6 * radius); // wider than a point: reads as one at any size
    face.points.forEach((_, k) => {
      const hidden = face.visible !== null && face.visible[k] < style.hidden_below;
      context.beginPath();
      context.arc(...at(k), hidden ? ring : radius, 0, 2 * Math.PI);
      if (hidden) context.stroke();
      else context.fill();
    });
  }
}
