import type { Backend, BackendInfo, BackendPreference } from '../../protocol/model';
import { InferenceError, ModelLoadError, errorMessage } from './errors';
import { isNode, loadOrt, type Ort, type OrtFlavour, type OrtSession, type OrtSessionOptions } from './ort';
import { RuntimeSession } from './session';
import { RtTensor, product } from './tensor';
import { median } from '../eval/quantile';

export interface RuntimeOptions {
  /** 'auto' (default): WebGPU when an adapter exists and the per-model self-check passes. */
  prefer?: BackendPreference;
  /** WASM threads; default: 1 in Node, defaultWasmThreads(cores) in a cross-origin isolated page, else 1. */
  wasmThreads?: number;
  /** Browser only: URL prefix of the ort-wasm-*.wasm files when they are not bundled. */
  wasmPaths?: string;
  /** Largest |logit| difference between WebGPU and WASM that still counts as agreement. */
  selfCheckTolerance?: number;
}

/** What a model hands the runtime to check WebGPU against WASM: inputs and the output to compare. */
export interface SelfCheckProbe {
  feeds: () => Record<string, RtTensor>;
  output: string;
}

export interface SessionSpec {
  /** Shown in errors and logs, e.g. "gpt-wt2/decoder.int8.onnx". */
  label: string;
  /** Outputs fed back as inputs (a KV cache): kept in GPU memory on WebGPU. */
  deviceOutputs?: readonly string[];
  /** Without a probe a model runs on WASM: WebGPU is never used unchecked. */
  probe?: SelfCheckProbe;
}

const DEFAULT_TOLERANCE = 1e-2;

interface GpuNavigator {
  gpu?: { requestAdapter(): Promise<unknown> };
}

/**
 * The execution environment: which onnxruntime-web build is loaded, whether WebGPU may be tried,
 * and how many WASM threads run. Create one per worker (or per Node process) and share it.
 */
export class Runtime {
  readonly environment: 'node' | 'browser';
  /** WebGPU if an adapter was found (and not refused by `prefer`), else WASM. */
  readonly candidate: Backend;
  /** Why `candidate` is what it is. */
  readonly candidateReason: string;
  readonly wasmThreads: number;
  private readonly ort: Ort;
  private readonly prefer: BackendPreference;
  private readonly tolerance: number;

  private constructor(init: {
    environment: 'node' | 'browser';
    candidate: Backend;
    candidateReason: string;
    wasmThreads: number;
    ort: Ort;
    prefer: BackendPreference;
    tolerance: number;
  }) {
    this.environment = init.environment;
    this.candidate = init.candidate;
    this.candidateReason = init.candidateReason;
    this.wasmThreads = init.wasmThreads;
    this.ort = init.ort;
    this.prefer = init.prefer;
    this.tolerance = init.tolerance;
  }

  static async create(options: RuntimeOptions = {}): Promise<Runtime> {
    const prefer = options.prefer ?? 'auto';
    const tolerance = options.selfCheckTolerance ?? DEFAULT_TOLERANCE;
    if (isNode()) return Runtime.createInNode(prefer, options.wasmThreads ?? 1, tolerance);
    const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
    const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
    const wasmThreads = options.wasmThreads ?? (isolated ? defaultWasmThreads(cores) : 1);
    const { candidate, reason } = prefer === 'wasm'
      ? { candidate: 'wasm' as const, reason: 'WASM was requested' }
      : await probeWebGpu(prefer);
    const flavour: OrtFlavour = candidate === 'webgpu' ? 'webgpu' : 'wasm';
    const ort = await loadOrt(flavour);
    configureWasm(ort, wasmThreads, options.wasmPaths);
    const threadNote = isolated ? `${wasmThreads} WASM thread${wasmThreads === 1 ? '' : 's'}` : '1 WASM thread (page not cross-origin isolated)';
    return new Runtime({
      environment: 'browser',
      candidate,
      candidateReason: `${reason}; ${threadNote}`,
      wasmThreads,
      ort,
      prefer,
      tolerance,
    });
  }

  /**
   * Node: `cpu` runs on onnxruntime-node's native CPU provider when its binary loads (the CLIs'
   * default: ~3x faster batched forwards, logits within ~1e-5 of WASM); `auto` and `wasm` run
   * onnxruntime-web's own kernels, as the browser does (tests, benchmarks of the app, the reference).
   */
  private static async createInNode(prefer: BackendPreference, threads: number, tolerance: number): Promise<Runtime> {
    const init = { environment: 'node' as const, wasmThreads: threads, prefer, tolerance };
    let nativeFailure = '';
    if (prefer === 'cpu') {
      try {
        const ort = await loadOrt('native');
        ort.env.logLevel = 'error';
        return new Runtime({ ...init, candidate: 'cpu', candidateReason: 'Node: onnxruntime-node (native CPU)', ort });
      } catch (error) {
        nativeFailure = ` (onnxruntime-node did not load: ${errorMessage(error)})`;
      }
    }
    const ort = await loadOrt('node');
    configureWasm(ort, threads, undefined);
    const reason = prefer === 'webgpu'
      ? 'Node: WebGPU is not available in the Node build of onnxruntime-web, using WASM'
      : `Node: onnxruntime-web runs its WASM backend${nativeFailure}`;
    return new Runtime({ ...init, candidate: 'wasm', candidateReason: reason, ort });
  }

  int64(values: ArrayLike<number> | BigInt64Array, dims: readonly number[]): RtTensor {
    let data: BigInt64Array;
    if (values instanceof BigInt64Array) {
      data = values;
    } else {
      data = new BigInt64Array(values.length);
      for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
    }
    checkSize(data.length, dims);
    return new RtTensor(new this.ort.Tensor('int64', data, dims));
  }

  float32(values: Float32Array, dims: readonly number[]): RtTensor {
    checkSize(values.length, dims);
    return new RtTensor(new this.ort.Tensor('float32', values, dims));
  }

  zeros(dims: readonly number[]): RtTensor {
    return this.float32(new Float32Array(product(dims)), dims);
  }

  /** Scalar int64 (shape []). */
  scalarInt64(value: number): RtTensor {
    return new RtTensor(new this.ort.Tensor('int64', BigInt64Array.of(BigInt(value)), []));
  }

  /**
   * Loads one graph. On a WebGPU candidate with a probe, the graph is loaded on both WebGPU and
   * WASM, the probe runs through both, and WebGPU is kept only if the outputs agree.
   */
  async createSession(bytes: Uint8Array, spec: SessionSpec): Promise<RuntimeSession> {
    const wasmInfo = (reason: string, diff?: number): BackendInfo => ({
      backend: 'wasm',
      reason,
      threads: this.wasmThreads,
      ...(diff === undefined ? {} : { selfCheckMaxAbsDiff: diff }),
    });
    if (this.candidate === 'cpu') {
      return this.open(bytes, spec, 'cpu', { backend: 'cpu', reason: this.candidateReason, threads: this.wasmThreads });
    }
    if (this.candidate === 'wasm' || !spec.probe) {
      const reason = this.candidate === 'wasm' ? this.candidateReason : 'no self-check for this graph, so WASM';
      return this.open(bytes, spec, 'wasm', wasmInfo(reason));
    }
    let gpu: OrtSession;
    try {
      gpu = await this.openOrt(bytes, spec, 'webgpu');
    } catch (error) {
      return this.open(bytes, spec, 'wasm', wasmInfo(`WebGPU failed to load the model (${errorMessage(error)}), using WASM`));
    }
    const reference = await this.open(bytes, spec, 'wasm', wasmInfo('self-check reference'));
    const gpuSession = new RuntimeSession(gpu, spec.label, { backend: 'webgpu', reason: 'self-check pending' });
    let diff: number;
    try {
      diff = await compareOutputs(gpuSession, reference, spec.probe);
    } catch (error) {
      await gpuSession.release();
      return relabel(reference, wasmInfo(`WebGPU self-check failed to run (${errorMessage(error)}), using WASM`));
    }
    const agree = Number.isFinite(diff) && diff <= this.tolerance;
    if (!agree && this.prefer !== 'webgpu') {
      await gpuSession.release();
      return relabel(reference, wasmInfo(`WebGPU disagreed with WASM (max |logit diff| ${diff.toExponential(2)} > ${this.tolerance}), using WASM`, diff));
    }
    let race = '';
    if (this.prefer === 'auto') {
      // Both backends are real and agree: a few timed runs of the probe decide which is faster here.
      let verdict: WarmupVerdict;
      try {
        verdict = warmupVerdict(await timeProbe(gpuSession, reference, spec.probe));
      } catch (error) {
        // Only WebGPU is new here: WASM ran the same input in the self-check. Whichever failed,
        // the message names it.
        const failed = error instanceof WarmupError ? error.backend : 'webgpu';
        if (failed === 'wasm') {
          await reference.release();
          return relabel(gpuSession, { backend: 'webgpu', reason: `${this.candidateReason}; self-check passed (max |logit diff| ${diff.toExponential(2)}); WASM failed during the warm-up (${errorMessage(error)})`, selfCheckMaxAbsDiff: diff });
        }
        await gpuSession.release();
        return relabel(reference, wasmInfo(`WebGPU failed during the warm-up (${errorMessage(error)}), using WASM`, diff));
      }
      if (verdict.backend === 'wasm') {
        await gpuSession.release();
        return relabel(reference, wasmInfo(`WebGPU passed the self-check but ${verdict.reason}: using WASM`, diff));
      }
      race = `; ${verdict.reason}`;
    }
    await reference.release();
    const reason = agree
      ? `${this.candidateReason}; self-check passed (max |logit diff| ${diff.toExponential(2)})${race}`
      : `WebGPU forced although the self-check failed (max |logit diff| ${diff.toExponential(2)})`;
    return relabel(gpuSession, { backend: 'webgpu', reason, selfCheckMaxAbsDiff: diff });
  }

  private async open(bytes: Uint8Array, spec: SessionSpec, backend: Backend, info: BackendInfo): Promise<RuntimeSession> {
    const session = await this.openOrt(bytes, spec, backend);
    return new RuntimeSession(session, spec.label, info);
  }

  private async openOrt(bytes: Uint8Array, spec: SessionSpec, backend: Backend): Promise<OrtSession> {
    const options: OrtSessionOptions = { graphOptimizationLevel: 'all', logSeverityLevel: 3 };
    if (backend === 'wasm' || backend === 'cpu') {
      options.executionProviders = [backend];
      // Dequantize int8 weights once at load instead of on every run (6x faster decode on WASM). The
      // native CPU provider gets the same, so its logits match WASM's (~1e-5) instead of running int8
      // matmuls that differ by ~0.1.
      options.extra = { session: { disable_quant_qdq: '1' } };
      if (backend === 'cpu') {
        options.intraOpNumThreads = this.wasmThreads;
        options.interOpNumThreads = 1;
      }
    } else {
      options.executionProviders = ['webgpu'];
      if (spec.deviceOutputs?.length) {
        const locations: Record<string, 'gpu-buffer'> = {};
        for (const name of spec.deviceOutputs) locations[name] = 'gpu-buffer';
        options.preferredOutputLocation = locations;
      }
    }
    try {
      return await this.ort.InferenceSession.create(bytes, options);
    } catch (error) {
      throw new ModelLoadError('bad-onnx', `${spec.label}: onnxruntime-web could not load it on ${backend}: ${errorMessage(error)}`, { cause: error });
    }
  }
}

/**
 * WASM threads for a page with `cores` cores: one on 2 cores or fewer, else the cores, at most 4.
 * On a 2-core machine one thread decoded faster than two in Chromium in four of five runs, by 10-34%
 * (GPT, RETRO and kNN-LM; the fifth was even): a one-token step of these small models is too little
 * work to split, and the second core serves the page and the other worker. Building kNN-LM keys for
 * a user's text (batched forwards) took 1.9x longer: what a class watches is decoding
 * (docs/benchmarks.md). `?threads=N` overrides.
 * Machines with more cores were not measured, so they keep the earlier default.
 */
export function defaultWasmThreads(cores: number): number {
  return cores <= 2 ? 1 : Math.min(4, cores);
}

function configureWasm(ort: Ort, threads: number, wasmPaths: string | undefined): void {
  ort.env.wasm.numThreads = threads;
  if (wasmPaths) ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.logLevel = 'error';
}

interface AdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}

/**
 * The name of a software WebGPU adapter (SwiftShader, llvmpipe/lavapipe, a fallback adapter), or
 * null for hardware. On this project's CPU-only machines SwiftShader decoded at 0.6-0.8 tokens/s
 * against 45-80 on WASM in the same browser, so Auto never picks one.
 */
export function softwareAdapter(adapter: AdapterLike): string | null {
  if (adapter.isFallbackAdapter) return 'a fallback adapter';
  const info = adapter.info;
  const text = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ');
  const match = /swiftshader|llvmpipe|lavapipe|software|basic render/i.exec(text);
  return match ? match[0] : null;
}

async function probeWebGpu(prefer: 'auto' | Backend): Promise<{ candidate: Backend; reason: string }> {
  const gpu = (globalThis as { navigator?: GpuNavigator }).navigator?.gpu;
  if (!gpu) return { candidate: 'wasm', reason: 'no WebGPU in this browser (navigator.gpu missing), using WASM' };
  try {
    const adapter = (await gpu.requestAdapter()) as AdapterLike | null;
    if (!adapter) return { candidate: 'wasm', reason: 'WebGPU present but no adapter was granted, using WASM' };
    const software = softwareAdapter(adapter);
    if (software && prefer === 'auto') {
      return { candidate: 'wasm', reason: `WebGPU here runs in software (${software}), far slower than WASM: using WASM (choose WebGPU under Backend to try it anyway)` };
    }
  } catch (error) {
    return { candidate: 'wasm', reason: `WebGPU adapter request failed (${errorMessage(error)}), using WASM` };
  }
  return { candidate: 'webgpu', reason: 'WebGPU adapter found' };
}

/** Timed runs of the probe per backend in the warm-up race, alternating so both see the same load. */
export const WARMUP_RUNS = 3;

export interface WarmupVerdict {
  backend: 'webgpu' | 'wasm';
  reason: string;
}

/**
 * Which backend Auto keeps, from the probe's run times in ms on each (after one untimed run each,
 * the self-check): the one with the lower median; a tie keeps WebGPU, whose advantage grows with
 * longer inputs. The reason names both medians, for the status line.
 */
export function warmupVerdict(times: { webgpu: readonly number[]; wasm: readonly number[] }): WarmupVerdict {
  const [gpu, cpu] = [median(times.webgpu), median(times.wasm)];
  const figures = `WebGPU ${gpu.toFixed(1)} ms, WASM ${cpu.toFixed(1)} ms per warm-up run`;
  return cpu < gpu ? { backend: 'wasm', reason: `WASM was faster in the warm-up (${figures})` } : { backend: 'webgpu', reason: `WebGPU was faster in the warm-up (${figures})` };
}

/** A failure during the warm-up, with the backend it happened on. */
class WarmupError extends Error {
  constructor(
    readonly backend: 'webgpu' | 'wasm',
    cause: unknown,
  ) {
    super(errorMessage(cause), { cause });
  }
}

async function timeProbe(gpu: RuntimeSession, wasm: RuntimeSession, probe: SelfCheckProbe): Promise<{ webgpu: number[]; wasm: number[] }> {
  const times = { webgpu: [] as number[], wasm: [] as number[] };
  const once = async (session: RuntimeSession, backend: 'webgpu' | 'wasm') => {
    const t0 = performance.now();
    let outputs: Record<string, RtTensor> = {};
    try {
      outputs = await session.run(probe.feeds());
      // Reading the output waits for the GPU to finish, as a decode step must.
      await outputs[probe.output]?.float32();
    } catch (error) {
      throw new WarmupError(backend, error);
    } finally {
      for (const t of Object.values(outputs)) t.dispose();
    }
    return performance.now() - t0;
  };
  for (let i = 0; i < WARMUP_RUNS; i++) {
    times.webgpu.push(await once(gpu, 'webgpu'));
    times.wasm.push(await once(wasm, 'wasm'));
  }
  return times;
}

async function compareOutputs(a: RuntimeSession, b: RuntimeSession, probe: SelfCheckProbe): Promise<number> {
  const [outA, outB] = [await a.run(probe.feeds()), await b.run(probe.feeds())];
  const ta = outA[probe.output];
  const tb = outB[probe.output];
  if (!ta || !tb) throw new InferenceError(`self-check output ${probe.output} missing`);
  const [x, y] = [await ta.float32(), await tb.float32()];
  for (const t of [...Object.values(outA), ...Object.values(outB)]) t.dispose();
  if (x.length !== y.length) return Infinity;
  let max = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i]! - y[i]!);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

function relabel(session: RuntimeSession, info: BackendInfo): RuntimeSession {
  session.setBackendInfo(info);
  return session;
}

function checkSize(length: number, dims: readonly number[]): void {
  if (length !== product(dims)) throw new InferenceError(`tensor of ${length} values cannot have shape [${dims.join(', ')}]`);
}
