// LiteRT.js: load the runtime once per page, compile a .tflite on a backend, run it.

import { Tensor, getWebGpuDevice, loadAndCompile, loadLiteRt } from "@litertjs/core";

const WASM_DIR = "/litert/core/wasm/";
let loading = null;

/** Load LiteRT.js's WASM once (it can be loaded only once per page). Threads need
 * SharedArrayBuffer, so a cross-origin-isolated page (the server's COOP/COEP headers) on
 * a browser with relaxed SIMD gets the threaded build; anything else the plain one. */
export function startRuntime() {
  if (!loading) {
    loading = (async () => {
      const threads = self.crossOriginIsolated && navigator.hardwareConcurrency > 1;
      if (threads) {
        try {
          await loadLiteRt(WASM_DIR, { threads: true });
          return { threads: true };
        } catch (error) {
          console.warn("LiteRT.js threads unavailable, single-threaded WASM:", error);
        }
      }
      await loadLiteRt(WASM_DIR);
      return { threads: false };
    })();
  }
  return loading;
}

/** Whether this browser offers LiteRT.js a WebGPU device (after startRuntime). */
export function hasWebGpu() {
  return getWebGpuDevice() !== null;
}

/** A compiled model: `run(input)` -> its outputs as Float32Arrays, read back to the CPU. */
export class Runner {
  constructor(model, requested) {
    this.model = model;
    this.requested = requested;
    // LiteRT.js compiles again on WASM, with only a console warning, when a model cannot
    // run wholly on WebGPU (browsers without JSPI): the backend that runs is the one the
    // compiled model reports, not the one asked for.
    this.backend = model.options.accelerator;
    this.fullyAccelerated = model.isFullyAccelerated;
    this.inputs = model.getInputDetails();
    this.outputs = model.getOutputDetails();
    this.lastMs = 0;
  }

  /** Outputs of one run. The time includes the read-back: WebGPU's run() returns before
   * the GPU has finished, so only the read-back says when the answer exists. */
  async run(data) {
    const start = performance.now();
    let input = new Tensor(data, Array.from(this.inputs[0].shape));
    if (this.backend === "webgpu") {
      input = await input.moveTo("webgpu");
    }
    const results = await this.model.run(input);
    input.delete();
    const outputs = [];
    for (const result of results) {
      const host = await result.moveTo("wasm");
      outputs.push(host.toTypedArray().slice());
      host.delete();
    }
    this.lastMs = performance.now() - start;
    return outputs;
  }

  delete() {
    this.model.delete();
  }
}

/** The bytes of the file at `url`: fetched while LiteRT.js's WASM loads, not after. */
export async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Compile a .tflite (its bytes) on "webgpu" or "wasm". WebGPU computes in fp32: fp16
 * moved BlazeFace's regressors by 0.15 px, so the page would not give Python's answers. */
export async function compile(bytes, backend) {
  const options = { accelerator: backend };
  if (backend === "webgpu") options.gpuOptions = { precision: "fp32" };
  // a copy: the same bytes compile again when the user switches backends
  return new Runner(await loadAndCompile(bytes.slice(), options), backend);
}
