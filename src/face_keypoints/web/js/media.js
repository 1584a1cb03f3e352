// Where frames come from: the camera, an uploaded photo or an uploaded video. Each
// failure is an Error whose message is the one line the page shows.

/** [value, label] of each camera openCamera takes: front and back, then every camera the
 * browser names (it names them once the user has allowed one), as "device:ID". */
export async function cameraChoices() {
  const choices = [["user", "front"], ["environment", "back"]];
  const devices = await navigator.mediaDevices?.enumerateDevices?.() ?? [];
  devices.filter((d) => d.kind === "videoinput" && d.deviceId).forEach((d, i) => {
    choices.push([`device:${d.deviceId}`, d.label || `camera ${i + 1}`]);
  });
  return choices;
}

/** {kind: "camera", video, stream} from the front ("user") or back ("environment")
 * camera, or the camera "device:ID". */
export async function openCamera(facing) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("The camera needs a secure page: open it on https (serve --cert and " +
                    "--key) or on localhost. Photos and videos work here.");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { ...(facing.startsWith("device:")
        ? { deviceId: { exact: facing.slice("device:".length) } }
        : { facingMode: { ideal: facing } }), width: { ideal: 640 }, height: { ideal: 480 } },
    });
  } catch (error) {
    const reasons = {
      NotAllowedError: "the browser was not allowed to use the camera",
      NotFoundError: "no camera was found",
      NotReadableError: "the camera is in use by another program",
    };
    throw new Error(`Camera: ${reasons[error.name] ?? error.message}. ` +
                    "Upload a photo or a video instead.");
  }
  const video = document.createElement("video");
  Object.assign(video, { muted: true, playsInline: true, srcObject: stream });
  await video.play();
  return { kind: "camera", name: "camera", video, stream };
}

/** {kind: "photo", name, bitmap} or {kind: "video", name, video} from an uploaded file. */
export async function openFile(file) {
  if (file.size === 0) throw new Error(`${file.name}: the file is empty (0 bytes)`);
  const type = file.type || "unknown type";
  if (!type.startsWith("video/")) {
    try {
      // Pixels as stored (no colour-profile conversion) and upright by EXIF, as Python
      // reads them.
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image",
                                                     colorSpaceConversion: "none",
                                                     premultiplyAlpha: "none" });
      return { kind: "photo", name: file.name, bitmap };
    } catch {
      if (type.startsWith("image/")) {
        throw new Error(`${file.name}: not an image this browser can decode (${type})`);
      }
    }
  }
  const video = await openVideo(file);
  if (!video) {
    throw new Error(`${file.name}: not an image or a video this browser can open (${type})`);
  }
  return { kind: "video", name: file.name, video };
}

/** Stop a source's camera or playback and free what it holds. */
export function closeSource(source) {
  if (!source) return;
  source.stream?.getTracks().forEach((track) => track.stop());
  if (source.video) {
    source.video.pause();
    if (source.kind === "video") URL.revokeObjectURL(source.video.src);
  }
  source.bitmap?.close();
}

// A looping, muted <video> of the file once its first frame is ready, or null when the
// browser cannot play it.
async function openVideo(file) {
  const video = document.createElement("video");
  Object.assign(video, { muted: true, playsInline: true, loop: true,
                         src: URL.createObjectURL(file) });
  const ready = await new Promise((resolve) => {
    video.addEventListener("loadeddata", () => resolve(true), { once: true });
    video.addEventListener("error", () => resolve(false), { once: true });
  });
  if (!ready || !video.videoWidth) {
    URL.revokeObjectURL(video.src);
    return null;
  }
  await video.play();
  return video;
}
