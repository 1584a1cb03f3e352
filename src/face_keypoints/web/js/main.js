// The page: load the models, take frames from the camera or an upload, draw the points,
// show the times, offer the points as JSON.

import { compile, hasWebGpu, startRuntime } from "./runtime.js";
import { FaceLandmarker, faceJson } from "./faces.js";
import { drawFaces } from "./draw.js";
import { closeSource, openCamera, openFile } from "./media.js";
import { FrameStats } from "./stats.js";

const MAX_FRAMES_KEPT = 3600; // a stream's download holds its last 2 minutes at 30 fps
const $ = (id) => document.getElementById(id);
const canvas = $("view");
const context = canvas.getContext("2d", { willReadFrequently: true });
const page = {
  card: null, settings: null, runtime: null, backend: null, faces: null, runners: [],
  source: null, generation: 0, working: Promise.resolve(),
  record: null, stats: new FrameStats(), firstFrame: null,
};

function say(text) { $("status").textContent = text; }

function warn(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function fail(error) {
  console.error(error);
  warn(error.message || String(error));
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
  if (backend === "webgpu" && !hasWebGpu()) {
    warn("This browser offers no WebGPU device here (it needs a secure page and a " +
         "browser with WebGPU): running on WASM.");
    backend = "wasm";
  }
  say(`Compiling the models for ${backend === "webgpu" ? "WebGPU" : "WASM"}…`);
  const [detector, model] = await Promise.all([
    compile("/model/detector.tflite", backend), compile("/model/landmarks.tflite", backend)]);
  const scheme = page.faces?.scheme;
  page.runners.forEach((runner) => runner.delete());
  page.runners = [detector, model];
  const zoomed = async () => { // for photos (BlazeFace.zoomedPass)
    const runner = await compile("/model/detector_zoom.tflite", backend);
    page.runners.push(runner);
    return runner;
  };
  page.faces = new FaceLandmarker(detector, model, page.card, page.settings, zoomed);
  if (scheme && page.faces.schemes.includes(scheme)) page.faces.setScheme(scheme);
  await page.faces.warmUp();
  $("backend-info").textContent = describeBackends({ detector, landmarks: model });
  page.backend = choice;
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
  if (!source || !page.faces) return;
  const { width, height } = source.kind === "photo" ? source.bitmap
    : { width: source.video.videoWidth, height: source.video.videoHeight };
  canvas.width = width;
  canvas.height = height;
  // A camera facing the user is shown as a mirror, as phones show it; the points in the
  // JSON stay in the camera's own coordinates.
  const facing = source.stream?.getVideoTracks()[0]?.getSettings().facingMode;
  canvas.classList.toggle("mirrored", source.kind === "camera" && facing !== "environment");
  if (source.kind === "photo") {
    page.record = { image: source.name, width, height, faces: [] };
    page.working = processPhoto(source, generation).catch((error) => {
      fail(error);
      say(`${source.name}: failed`);
    });
    return;
  }
  page.record = { video: source.name, width, height, fps: 0, frames: [] };
  say(source.kind === "camera" ? "Camera: tracking" : `${source.name}: tracking, looped`);
  const video = source.video;
  let index = 0, last = -Infinity;
  const next = () => {
    if (generation !== page.generation) return;
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
    else requestAnimationFrame(onFrame);
  };
  const onFrame = (_, metadata) => {
    if (generation !== page.generation) return;
    const time = source.kind === "video" ? (metadata?.mediaTime ?? video.currentTime)
      : performance.now() / 1000;
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
  frames.push({ frame: index, faces: faces.map(faceJson) });
  if (frames.length > MAX_FRAMES_KEPT) frames.shift();
  finishFrame(faces, start);
  page.record.fps = Number(page.stats.fps().toFixed(3)) || 0;
}

/** Draw the points over the frame on the canvas and account the frame's times. */
function finishFrame(faces, start) {
  const drawStart = performance.now();
  drawFaces(context, faces, page.settings.schemes, page.settings.colours);
  const end = performance.now();
  const { detector, landmarker } = page.faces;
  page.stats.add({ detector: detector.ms, landmarks: landmarker.ms, model: landmarker.modelMs,
                   drawing: end - drawStart, frame: end - start });
  if (page.source.kind !== "photo") page.firstFrame ??= end; // ms since the page opened
  showStats(faces.length);
  $("download").disabled = false;
  // The photo path's zoomed detector compiles once the first frame is out of the way.
  page.faces.detector.zoomedPass().catch(() => {}); // a failure shows on the next photo
}

function showStats(faceCount) {
  const s = page.stats;
  $("faces").textContent = String(faceCount);
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

// --- controls ------------------------------------------------------------------------

function download() {
  const name = page.record.image ?? page.record.video;
  const blob = new Blob([JSON.stringify(page.record)], { type: "application/json" });
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(blob), download: `${name.replace(/\.[^.]*$/, "")}.json` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** Show the camera; `opening` is a camera already being opened (at page start, while
 * the models compile). */
async function startCamera(opening = openCamera($("facing").value)) {
  try {
    await switchTo(await opening);
    warn("");
  } catch (error) {
    fail(error);
  }
}

function wireControls() {
  const backend = $("backend");
  backend.addEventListener("change", () => useBackend(backend.value).catch((error) => {
    fail(error); // the models compiled before go on
    backend.value = page.backend;
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
  $("upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = ""; // the same file chosen again is a new upload
    if (!file) return;
    try {
      const source = await openFile(file);
      warn("");
      await switchTo(source);
    } catch (error) {
      fail(error);
      if (!page.source) say("Waiting for a camera, photo or video");
    }
  });
  $("download").addEventListener("click", download);
}

async function main() {
  wireControls();
  // The camera starts while the models load: the first frame comes sooner.
  const camera = openCamera($("facing").value);
  camera.catch(() => {}); // reported by startCamera below
  const [card, settings, runtime] = await Promise.all([
    fetchJson("/model/model.json"), fetchJson("/model/page.json"), startRuntime()]);
  Object.assign(page, { card, settings, runtime });
  $("model-name").textContent = `model ${settings.model.label}: ${settings.model.file}`;
  const requested = new URLSearchParams(location.search).get("backend");
  if (["auto", "webgpu", "wasm"].includes(requested)) $("backend").value = requested;
  await useBackend($("backend").value);
  const schemes = page.faces.schemes;
  $("scheme").replaceChildren(...schemes.map((name) => new Option(
    settings.schemes[name]?.description ?? name, name)));
  $("scheme").disabled = schemes.length < 2;
  say("Starting the camera…");
  await startCamera(camera);
  if (!page.source) {
    say("Waiting for a camera, photo or video");
    page.faces.detector.zoomedPass().catch(() => {}); // ready for a photo
  }
}

main().catch((error) => {
  fail(error);
  say("The page could not start");
});
