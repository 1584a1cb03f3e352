// Tracking as runtime/tracker.py does it (MediaPipe's way): the last frame's raw
// landmarks place the next crop; a face is kept while its landmarks look like a face
// framed as in training, do not shrink below `shrink_limit` of its size when a
// whole-frame search last saw it, and the model's presence stays at least
// `minTrackingConfidence` (a model without a presence output: while BlazeFace, run on
// the crop alone, still finds one); the whole frame is searched when no face is
// tracked, and every `redetect_every` frames, and a face found there is kept only when
// its presence reaches the same threshold.

import { corners, iou, landmarkBox } from "./geometry.js";
import { OneEuroFilter } from "./smoothing.js";

/** True when landmarks predicted in square `sq` do not look like a face framed there. */
export function lost(points, sq, width, height, rules) {
  const box = landmarkBox(points);
  const side = Math.max(box[2] - box[0], box[3] - box[1]) / sq.side;
  const offset = Math.hypot((box[0] + box[2]) / 2 - sq.cx, (box[1] + box[3]) / 2 - sq.cy);
  const inside = points.filter(([x, y]) => x >= 0 && x <= width - 1 && y >= 0 && y <= height - 1)
    .length / points.length;
  return !(rules.side_range[0] <= side && side <= rules.side_range[1])
    || offset / sq.side > rules.max_offset || inside < rules.min_inside;
}

export class Tracker {
  /** `rules`: page.json's tracking; `smoothing`: its One Euro parameters, or null;
   * `maxFaces`: how many faces to follow at most (null: all). */
  constructor(detector, landmarker, rules, smoothing, maxFaces = null) {
    Object.assign(this, { detector, landmarker, rules, smoothing, maxFaces });
    this.minTrackingConfidence = rules.min_tracking_confidence;
    this.reset();
  }

  /** Forget every face: the next frame starts from a detection. */
  reset() {
    this.tracks = [];
    this.sinceDetection = 0;
    this.searches = 0; // whole-frame searches, for the page's counters
  }

  /** Follow the tracked faces into `frame` at `time` seconds; find new ones. A track is
   * {points (raw), output (smoothed), score, presence, visible, seen, smoother}. */
  async step(frame, time) {
    const kept = [];
    for (const track of this.tracks) {
      const sq = this.landmarker.cropSquare(track.points, track.visible);
      const reading = await this.landmarker.read(frame, sq);
      if (lost(reading.points, sq, frame.width, frame.height, this.rules)
          || this.landmarker.cropSquare(reading.points).side
             < this.rules.shrink_limit * track.seen) {
        continue;
      }
      const score = await this.stillThere(frame, sq, reading);
      if (score !== null) {
        Object.assign(track, reading, { score });
        kept.push(track);
      }
    }
    this.tracks = this.distinct(kept);
    this.sinceDetection += 1;
    const room = this.maxFaces === null || this.tracks.length < this.maxFaces;
    if (!this.tracks.length || (room && this.sinceDetection >= this.rules.redetect_every)) {
      await this.addNewFaces(frame);
      this.sinceDetection = 0;
    }
    for (const track of this.tracks) {
      const box = landmarkBox(track.points);
      const scale = Math.max(box[2] - box[0], box[3] - box[1]);
      track.output = track.smoother ? track.smoother.filter(track.points, time, scale)
        : track.points;
    }
    return this.tracks;
  }

  /** The tracked face's score in this frame, or null when it is gone: the model's
   * presence against the threshold, else the detector on the crop. */
  async stillThere(frame, sq, reading) {
    if (reading.presence !== null) {
      return reading.presence >= this.minTrackingConfidence ? reading.presence : null;
    }
    const found = await this.detector.detect(frame, sq, this.rules.track_min_score);
    return found.length ? found[0].score : null;
  }

  /** Start a track for each detected face that no track follows yet. */
  async addNewFaces(frame) {
    this.searches += 1;
    const followed = this.tracks.map((t) => corners(this.landmarker.cropSquare(t.points)));
    for (const detection of await this.detector.detect(frame)) {
      if (this.maxFaces !== null && this.tracks.length >= this.maxFaces) break;
      const sq = this.landmarker.detectionSquare(detection);
      const overlaps = iou(corners(sq), followed);
      if (followed.length && Math.max(...overlaps) > this.rules.match_iou) {
        this.tracks[overlaps.indexOf(Math.max(...overlaps))].seen = sq.side;
        continue;
      }
      const reading = await this.landmarker.detected(frame, detection);
      if (reading.presence !== null && reading.presence < this.minTrackingConfidence) {
        continue; // the detector saw a face the landmark model does not frame
      }
      const smoother = this.smoothing ? new OneEuroFilter(this.smoothing) : null;
      const seen = this.landmarker.cropSquare(reading.points).side;
      this.tracks.push({ ...reading, output: reading.points, score: detection.score,
                         smoother, seen });
      followed.push(corners(this.landmarker.cropSquare(reading.points)));
    }
  }

  // Drop a track whose crop overlaps an earlier (older) one's: they follow one face.
  distinct(tracks) {
    const kept = [];
    for (const track of tracks) {
      const box = corners(this.landmarker.cropSquare(track.points));
      const others = kept.map((k) => corners(this.landmarker.cropSquare(k.points)));
      if (!kept.length || Math.max(...iou(box, others)) <= this.rules.same_face_iou) {
        kept.push(track);
      }
    }
    return kept;
  }
}
