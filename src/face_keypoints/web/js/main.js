// The page: load the models, take frames from the camera or an upload, draw the points,
// show the times, offer the points as JSON.

import { quietLiteRtLog } from "./log.js";
import { compile, fetchBytes, hasWebGpu, startRuntime } from "./runtime.js";
import { FaceLandmarker, faceJson } from "./faces.js";
import { drawFaces } from "./draw.js";
import { cameraChoices, closeSource, openCamera, openFile } from "./media.js";
import { FrameStats } from "./stats.js";

const MAX_FRAMES_KEPT = 3600; // a stream's download holds its last 2 minutes at 30 fps
const $ = (id) => document.getElementById(id);
const canvas = $("view");
const context = canvas.getContext("2d", { willReadFrequently: true });
const page = {
  card: null, settings: null, runtime: null, backend: null, faces: null, runners: [],
  source: null, generation: 0, working: Promise.resolve(),
  record: null, stats: new FrameStats(), firstFrame: null, files: null, model: null,
};

function say(text) { $("status").textContent = text; }

function warn(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

/** Show a failure the page handles (no camera, a bad file): a warning, not an error. */
function fail(error) {
  console.warn(error.message || String(error));
  warn(error.message || String(error));
}

/** A lasting note about how the page runs (WASM instead of WebGPU); `warn` lines come
 * and go with the user's actions, this one stays while it holds. */
function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : "-");

// --- models and backends -----------------------------------------------------------

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return response.json();
}

/** Compile both models on `choice` ("auto", "webgpu" or "wasm") and make them the
 * page's FaceLandmarker; the current source goes on with them. */
async function useBackend(choice) {
  await stopProcessing();
  let backend = choice === "auto" ? (hasWebGpu() ? "webgpu" : "wasm") : choice;
  notice("");
  if (backend === "webgpu" && !hasWebGpu()) {
    notice("This browser offers no WebGPU device here (it needs a secure page and a " +
           "browser with WebGPU): running on WASM.");
    backend = "wasm";
  }
  say(`Compiling the models for ${backend === "webgpu" ? "WebGPU" : "WASM"}…`);
  const [detector, model] = await Promise.all([
    compile(await page.files.detector, backend), compile(await page.files.landmarks, backend)]);
  const scheme = page.faces?.scheme;
  page.runners.forEach((runner) => runner.delete());
  page.runners = [detector, model];
  const zoomed = async () => { // for photos (BlazeFace.zoomedPass)
    const runner = await compile(await fetchBytes("/model/detector_zoom.tflite"), backend);
    page.runners.push(runner);
    return runner;
  };
  page.faces = new FaceLandmarker(detector, model, page.card, page.settings, zoomed);
  if (scheme && page.faces.schemes.includes(scheme)) page.faces.setScheme(scheme);
  page.faces.configure(readSettings());
  await page.faces.warmUp();
  $("backend-info").textContent = describeBackends({ detector, landmarks: model });
  // The menu says what runs: WASM when WebGPU was asked for and is not there.
  page.backend = choice === "webgpu" ? model.backend : choice;
  $("backend").value = page.backend;
  if (model.requested !== model.backend) {
    notice("WebGPU cannot run the whole landmark model in this browser: LiteRT.js runs " +
           "it on WASM.");
  }
  await restart();
}

function describeBackends(runners) {
  const adapter = page.runners[0]?.backend === "webgpu" ? webGpuAdapter() : "";
  return Object.entries(runners).map(([name, runner]) => {
    let text = runner.backend === "webgpu" ? `WebGPU${adapter}` : `WASM${page.runtime.threads
      ? ", threads" : ""}`;
    if (runner.requested !== runner.backend) {
      text += " (WebGPU cannot run the whole model here: LiteRT.js fell back to WASM)";
    } else {
      text += runner.fullyAccelerated ? ", fully accelerated" : ", partly on WASM";
    }
    return `${name}: ${text}`;
  }).join("; ");
}

function webGpuAdapter() {
  const info = page.runners[0]?.model.options.environment.webGpuDevice?.adapterInfo;
  const name = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ");
  return name ? ` (${name})` : "";
}

// --- sources -------------------------------------------------------------------------

/** Stop the frame loop and wait for the frame being processed. */
async function stopProcessing() {
  page.generation += 1;
  await page.working;
}

async function switchTo(source) {
  await stopProcessing();
  closeSource(page.source);
  page.source = source;
  $("camera").textContent = source?.kind === "camera" ? "Stop camera" : "Start camera";
  await restart();
}

/** Start the current source from scratch: a photo is detected again, a stream tracked
 * from a fresh detection. */
async function restart() {
  const source = page.source;
  const generation = ++page.generation;
  page.faces?.reset();
  page.stats.reset();
  if (!page.faces) return;
  if (!source) {
    say("Waiting for a camera, photo or video");
    return;
  }
  const { width, height } = source.kind === "photo" ? source.bitmap
    : { width: source.video.videoWidth, height: source.video.videoHeight };
  canvas.width = width;
  canvas.height = height;
  // A camera facing the user is shown as a mirror, as phones show it; the points in the
  // JSON stay in the camera's own coordinates.
  const facing = source.stream?.getVideoTracks()[0]?.getSettings().facingMode;
  canvas.classList.toggle("mirrored", source.kind === "camera" && facing !== "environment");
  const common = { precision: page.model.precision, scheme: page.faces.scheme };
  if (source.kind === "photo") {
    page.record = { image: source.name, width, height, ...common, faces: [] };
    page.working = processPhoto(source, generation).catch((error) => {
      fail(error);
      say(`${source.name}: failed`);
    });
    return;
  }
  // `predict`'s stream JSON: "fps" is the video's frame rate (the camera's, or measured
  // from the frames' media times), each frame has its media "time" in seconds and, for a
  // file, its "frame" index in the video (the page skips frames it has no time for).
  const fps = source.kind === "camera"
    ? source.stream.getVideoTracks()[0]?.getSettings().frameRate ?? null : null;
  page.record = { video: source.name, width, height, fps, ...common, codec: null, frames: [] };
  page.frameRate = new FrameRate();
  say(source.kind === "camera" ? "Camera: tracking" : `${source.name}: tracking, looped`);
  const video = source.video;
  let index = 0, last = -Infinity, cameraStart = null;
  const next = () => {
    if (generation !== page.generation) return;
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
    else requestAnimationFrame(onFrame);
  };
  const onFrame = (_, metadata) => {
    if (generation !== page.generation) return;
    let time;
    if (source.kind === "video") {
      time = metadata?.mediaTime ?? video.currentTime;
    } else {
      cameraStart ??= performance.now();
      time = (performance.now() - cameraStart) / 1000;
    }
    if (time < last) page.faces.reset(); // the video looped: a new stream
    last = time;
    page.working = processFrame(source, generation, index++, time)
      .catch((error) => { fail(error); page.generation += 1; })
      .finally(next);
  };
  next();
}

async function processPhoto(source, generation) {
  say(`${source.name}: finding faces…`);
  const start = performance.now();
  // Transparent pixels over black, as `predict` reads such a PNG (data/images.py).
  context.fillStyle = "black";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(source.bitmap, 0, 0);
  const frame = context.getImageData(0, 0, canvas.width, canvas.height);
  page.faces.resetTimes();
  const faces = await page.faces.detect(frame);
  if (generation !== page.generation) return;
  finishFrame(faces, start);
  page.record.faces = faces.map(faceJson);
  say(`${source.name}: ${plural(faces.length, "face")}`);
}

async function processFrame(source, generation, index, time) {
  const start = performance.now();
  const { videoWidth: width, videoHeight: height } = source.video;
  if (width !== canvas.width || height !== canvas.height) { // a phone turned: a new stream
    Object.assign(canvas, { width, height });
    Object.assign(page.record, { width, height });
    page.faces.reset();
  }
  context.drawImage(source.video, 0, 0, width, height);
  const frame = context.getImageData(0, 0, canvas.width, canvas.height);
  page.faces.resetTimes();
  const faces = await page.faces.track(frame, time);
  if (generation !== page.generation) return;
  const frames = page.record.frames;
  frames.push({ frame: index, time: Number(time.toFixed(6)), faces: faces.map(faceJson) });
  if (frames.length > MAX_FRAMES_KEPT) frames.shift();
  if (source.kind === "video") page.frameRate.add(time);
  finishFrame(faces, start);
}

/** A video file's frame rate from the media times of the frames the page processed:
 * the shortest step between two is one frame (or a few, when the page is slower than the
 * video), refined over the whole span; the browser does not say a file's frame rate. */
class FrameRate {
  constructor() { this.times = []; }

  add(time) { this.times.push(time); }

  /** Frames per second, or null before two distinct times. */
  value() {
    const times = [...new Set(this.times)].sort((p, q) => p - q);
    if (times.length < 2) return null;
    const steps = times.slice(1).map((t, i) => t - times[i]);
    const step = Math.min(...steps);
    const frames = steps.reduce((sum, s) => sum + Math.round(s / step), 0);
    return frames / (times.at(-1) - times[0]);
  }
}

/** Draw the points over the frame on the canvas and account the frame's times. */
function finishFrame(faces, start) {
  const drawStart = performance.now();
  drawFaces(context, faces, page.settings.schemes, page.settings.drawing);
  const end = performance.now();
  const { detector, landmarker } = page.faces;
  page.stats.add({ detector: detector.ms, landmarks: landmarker.ms, model: landmarker.modelMs,
                   drawing: end - drawStart, frame: end - start });
  if (page.source.kind !== "photo") page.firstFrame ??= end; // ms since the page opened
  showStats(faces);
  $("download").disabled = false;
}

function showStats(faces) {
  const s = page.stats;
  $("faces").textContent = String(faces.length);
  $("presence").textContent = presence(faces);
  $("detector-ms").textContent = ms(s.mean("detector"));
  $("landmarks-ms").textContent = `${ms(s.mean("landmarks"))} (${ms(s.mean("model"))})`;
  $("drawing-ms").textContent = ms(s.mean("drawing"));
  $("frame-ms").textContent = ms(s.mean("frame"));
  $("fps").textContent = Number.isFinite(s.fps()) ? s.fps().toFixed(1) : "-";
  const frames = page.record.frames;
  $("frames").textContent = frames ? `${frames.at(-1).frame + 1}, ${page.faces.tracker.searches}`
    : "-";
  $("first-frame").textContent = page.firstFrame ? `${Math.round(page.firstFrame)} ms` : "-";
}

/** Each face's presence in the latest frame, as the face list orders them. */
function presence(faces) {
  if (!page.faces.hasPresence) return "- (the model has no presence output)";
  return faces.length ? faces.map((f) => f.presence.toFixed(3)).join(", ") : "-";
}

// --- controls ------------------------------------------------------------------------

/** The record as `predict` writes it; a video file's frames numbered by media time. */
function finishedRecord() {
  const record = page.record;
  if (page.source?.kind !== "video" || !record.frames) return record;
  const fps = page.frameRate.value();
  const frames = fps === null ? record.frames
    : record.frames.map((f) => ({ ...f, frame: Math.round(f.time * fps) }));
  return { ...record, fps: fps === null ? null : Number(fps.toFixed(3)), frames };
}

function download() {
  const record = finishedRecord();
  const name = (record.image ?? record.video).replace(/\.[^.]*$/, "");
  const blob = new Blob([JSON.stringify(record)], { type: "application/json" });
  // One file name per scheme: a model with two heads gives two different files.
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(blob), download: `${name}.${record.scheme}.json` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** Run model `index` of page.json's models (what `serve --model` was given): only the
 * chosen model is downloaded, when it is chosen. */
async function useModel(index) {
  const model = page.settings.models[index];
  const [card, bytes] = await Promise.all([fetchJson(model.card), fetchBytes(model.tflite)]);
  const previous = { card: page.card, model: page.model, files: page.files };
  const files = { ...page.files, landmarks: Promise.resolve(bytes) };
  Object.assign(page, { card, model, files });
  try {
    await useBackend(page.backend);
  } catch (error) {
    Object.assign(page, previous);
    throw error;
  }
  showModel();
}

function showModel() {
  $("model-name").textContent = `model ${page.model.label}: ${page.model.file}`;
  const schemes = page.faces.schemes;
  $("scheme").replaceChildren(...schemes.map((name) => new Option(
    page.settings.schemes[name]?.description ?? name, name)));
  $("scheme").value = page.faces.scheme;
  $("scheme").disabled = schemes.length < 2;
  $("min-presence").disabled = !page.faces.hasPresence;
}

/** Show the camera; `opening` is a camera already being opened (at page start, while
 * the models compile). */
async function startCamera(opening = openCamera($("facing").value)) {
  try {
    await switchTo(await opening);
    warn("");
    await listCameras();
  } catch (error) {
    fail(error);
  }
}

/** Offer every camera by name (a laptop with two), once the browser names them (after
 * the user allowed one). */
async function listCameras() {
  const select = $("facing");
  const chosen = select.value;
  const options = await cameraChoices();
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  select.value = options.some(([value]) => value === chosen) ? chosen : options[0][0];
}

/** The settings form as FaceLandmarker.configure takes it; a bad number is ignored. */
function readSettings() {
  const maxFaces = Number.parseInt($("max-faces").value, 10);
  const minScore = Number.parseFloat($("min-score").value);
  const minPresence = Number.parseFloat($("min-presence").value);
  return {
    maxFaces: maxFaces >= 1 ? maxFaces : null,
    minScore: minScore > 0 && minScore < 1 ? minScore : page.settings.detector.min_score,
    minTrackingConfidence: minPresence >= 0 && minPresence <= 1 ? minPresence
      : page.settings.tracking.min_tracking_confidence,
    smoothing: $("smoothing").checked,
  };
}

/** A photo or video from the file picker or dropped on the page. */
async function useFile(file) {
  try {
    const source = await openFile(file);
    warn("");
    await switchTo(source);
  } catch (error) {
    fail(error);
    if (!page.source) say("Waiting for a camera, photo or video");
  }
}

function wireDrop() {
  const dragging = (on) => document.body.classList.toggle("dragging", on);
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    dragging(true);
  });
  document.addEventListener("dragleave", () => dragging(false));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    dragging(false);
    const file = event.dataTransfer?.files[0];
    if (file && page.faces) useFile(file);
  });
}

function wireControls() {
  const backend = $("backend");
  backend.addEventListener("change", () => useBackend(backend.value).catch((error) => {
    fail(error); // the models compiled before go on
    backend.value = page.backend;
    return restart();
  }));
  const model = $("model");
  model.addEventListener("change", () => useModel(Number(model.value)).catch((error) => {
    fail(error); // the model that ran before goes on
    model.value = String(page.settings.models.indexOf(page.model));
    return restart();
  }));
  $("scheme").addEventListener("change", () => {
    page.faces.setScheme($("scheme").value);
    stopProcessing().then(restart).catch(fail);
  });
  $("camera").addEventListener("click", () => (page.source?.kind === "camera"
    ? switchTo(null).then(() => say("Camera stopped")) : startCamera()));
  $("facing").addEventListener("change", () => {
    if (page.source?.kind === "camera") startCamera();
  });
  $("upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = ""; // the same file chosen again is a new upload
    if (file) useFile(file);
  });
  $("download").addEventListener("click", download);
  for (const id of ["max-faces", "min-score", "min-presence", "smoothing"]) {
    $(id).addEventListener("change", () => {
      if (!page.faces) return;
      page.faces.configure(readSettings());
      stopProcessing().then(restart).catch(fail);
    });
  }
  wireDrop();
}

async function main() {
  quietLiteRtLog();
  wireControls();
  // The camera starts, and the models download, while LiteRT.js loads: the first frame
  // comes sooner.
  const camera = openCamera($("facing").value);
  camera.catch(() => {}); // reported by startCamera below
  page.files = { detector: fetchBytes("/model/detector.tflite"),
                 landmarks: fetchBytes("/model/landmarks.tflite") };
  Object.values(page.files).forEach((file) => file.catch(() => {})); // reported when used
  const [card, settings, runtime] = await Promise.all([
    fetchJson("/model/model.json"), fetchJson("/model/page.json"), startRuntime()]);
  Object.assign(page, { card, settings, runtime, model: settings.models[0] });
  $("model").replaceChildren(...settings.models.map((m, i) => new Option(
    `${m.label} (${m.precision ?? m.file})`, String(i))));
  $("model").disabled = settings.models.length < 2;
  $("min-score").value = String(settings.detector.min_score);
  $("min-presence").value = String(settings.tracking.min_tracking_confidence);
  const requested = new URLSearchParams(location.search).get("backend");
  if (["auto", "webgpu", "wasm"].includes(requested)) $("backend").value = requested;
  await useBackend($("backend").value);
  showModel();
  say("Starting the camera…");
  await startCamera(camera);
  if (!page.source) {
    say("Waiting for a camera, photo or video");
    // The photo path's zoomed detector, ready for a photo; a camera never needs it (a
    // photo opened later compiles it then), so it takes no time from the camera's frames.
    page.faces.detector.zoomedPass().catch(() => {}); // a failure shows on the next photo
  }
}

main().catch((error) => {
  console.error(error);
  warn(error.message || String(error));
  say("The page could not start");
});
