/**
 * Whether this host's whisper workers run on a GPU, decided once at start:
 *   - a GPU must be visible (`nvidia-smi -L` lists one), and
 *   - a CUDA build of whisper-server must exist or be buildable (a cached CUDA build, as the Docker
 *     image carries, or nvcc to compile one).
 * `gpu: auto` uses the GPU when both hold and the CPU otherwise. `gpu: on` requires it: when the GPU
 * is missing or the CUDA build fails, `gpuFallback: cpu` falls back to a CPU build with a warning and
 * `gpuFallback: refuse` stops the start with `gpu_unavailable` and the reason.
 */
import fs from 'node:fs';
import { execa } from 'execa';
import { isKolError, KolError, toKolError } from '../engine/errors.js';
import type { Logger } from '../engine/log.js';
import { binaryPath, engineBuildDir, hasNvcc, type BuildOptions, type EngineBuild } from '../engine/whisper/build.js';
import type { ServerConfig } from './config.js';

export interface GpuDevice {
  index: number;
  name: string;
  uuid: string;
}

/** What the host offers; injectable so that tests can describe hosts this machine is not. */
export interface GpuProbe {
  /** GPUs the driver reports (empty when nvidia-smi is missing or fails). */
  devices(): Promise<GpuDevice[]>;
  /** Whether a CUDA build of whisper-server is cached already. */
  cudaBuildCached(): boolean;
  hasNvcc(): boolean;
}

export type EngineBuilder = (options: BuildOptions) => Promise<EngineBuild>;

export interface EngineChoice {
  engine: EngineBuild;
  gpu: boolean;
  /** Why the GPU is not used, when it is not (for the start-up log and `--print-config`). */
  reason?: string;
}

/** `nvidia-smi -L`: "GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-…)" per line. */
export function parseGpuList(output: string): GpuDevice[] {
  const devices: GpuDevice[] = [];
  for (const line of output.split('\n')) {
    const match = /^GPU (\d+): (.+?) \(UUID: ([^)]+)\)/.exec(line.trim());
    if (match) devices.push({ index: Number(match[1]), name: match[2], uuid: match[3] });
  }
  return devices;
}

export const hostGpuProbe: GpuProbe = {
  async devices() {
    try {
      const { stdout } = await execa('nvidia-smi', ['-L'], { timeout: 10_000 });
      return parseGpuList(stdout);
    } catch {
      return [];
    }
  },
  cudaBuildCached() {
    try {
      return fs.existsSync(binaryPath(engineBuildDir({ cuda: true }).dir));
    } catch {
      return false;
    }
  },
  hasNvcc,
};

/**
 * Picks CPU or GPU and returns the engine build to run. `build` is `provisionEngine` (cached builds are
 * instant); tests pass a stand-in to simulate a failing CUDA build.
 */
export async function chooseEngine(config: Pick<ServerConfig, 'gpu' | 'gpuFallback' | 'gpuDevices'>, logger: Logger, build: EngineBuilder, probe: GpuProbe = hostGpuProbe): Promise<EngineChoice> {
  if (config.gpu === 'off') return { engine: await build({ cuda: false }), gpu: false, reason: 'gpu is "off"' };

  let reason: string;
  const devices = await probe.devices();
  if (devices.length === 0) {
    reason = 'no NVIDIA GPU is visible (nvidia-smi is missing or lists none)';
  } else if (!probe.cudaBuildCached() && !probe.hasNvcc()) {
    reason = 'there is no CUDA build of whisper.cpp and no CUDA toolkit (nvcc) to make one';
  } else {
    const missing = config.gpuDevices.filter((id) => !devices.some((d) => d.index === id));
    if (missing.length > 0) {
      throw new KolError('invalid_config', `gpuDevices names GPU ${missing.join(', ')}, but this host has ${devices.map((d) => `${d.index} (${d.name})`).join(', ')}.`);
    }
    try {
      const engine = await build({ cuda: true });
      logger.info({ gpus: devices.map((d) => `${d.index}: ${d.name}`) }, 'whisper workers run on the GPU');
      return { engine, gpu: true };
    } catch (err) {
      if (!isKolError(err, 'build_failed') && !isKolError(err, 'build_tool_missing')) throw err;
      const error = toKolError(err);
      reason = `the CUDA build of whisper.cpp failed (${error.message.split('\n')[0]})`;
      logger.error({ code: error.code, err: error.message }, 'CUDA build of whisper.cpp failed');
    }
  }

  if (config.gpu === 'on' && config.gpuFallback === 'refuse') {
    throw new KolError('gpu_unavailable', `gpu is "on" and gpuFallback is "refuse", but ${reason}. Fix the GPU setup, or set gpuFallback=cpu (KOL_GPU_FALLBACK=cpu) to run on the CPU.`);
  }
  if (config.gpu === 'on') logger.warn({ reason }, `gpu is "on" but ${reason}: falling back to the CPU (gpuFallback=cpu); expect much slower transcription`);
  else if (reason.startsWith('the CUDA build')) logger.warn({ reason }, `${reason}: running on the CPU`);
  else logger.info({ reason }, 'whisper workers run on the CPU');
  return { engine: await build({ cuda: false }), gpu: false, reason };
}
