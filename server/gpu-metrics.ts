/**
 * GPU figures for /metrics from `nvidia-smi`, polled in the background when nvidia-smi exists:
 *   --query-gpu=index,uuid,name,memory.used,memory.total,utilization.gpu   (per GPU)
 *   --query-compute-apps=pid,gpu_uuid,used_memory                         (VRAM per process → per worker)
 *   pmon -c 1 -s u                                                        (SM % per process → per worker)
 * All three with `--format=csv,noheader,nounits` where they take it. Figures nvidia-smi cannot give
 * (`[N/A]`, `[Not Supported]`, `-`) are left out rather than reported as 0.
 *
 * Inside a container nvidia-smi reports host process ids, which do not match the workers' ids in the
 * container's namespace: per-worker figures then stay empty and only the per-GPU ones are reported.
 */
import { execa } from 'execa';

export interface GpuSample {
  index: number;
  uuid: string;
  name: string;
  memoryUsedBytes?: number;
  memoryTotalBytes?: number;
  /** 0–1. */
  utilization?: number;
}

export interface GpuProcessSample {
  pid: number;
  gpuUuid: string;
  memoryUsedBytes?: number;
}

export interface GpuProcessUtilization {
  gpu: number;
  pid: number;
  /** SM (compute) utilisation, 0–1. */
  sm?: number;
}

export interface GpuSnapshot {
  at: number;
  gpus: GpuSample[];
  processes: GpuProcessSample[];
  utilization: GpuProcessUtilization[];
}

export const GPU_QUERY_ARGS = ['--query-gpu=index,uuid,name,memory.used,memory.total,utilization.gpu', '--format=csv,noheader,nounits'];
export const APPS_QUERY_ARGS = ['--query-compute-apps=pid,gpu_uuid,used_memory', '--format=csv,noheader,nounits'];
export const PMON_ARGS = ['pmon', '-c', '1', '-s', 'u'];

const MIB = 1024 * 1024;

/** A number, or undefined for nvidia-smi's "not available" markers. */
function num(field: string | undefined): number | undefined {
  if (field === undefined) return undefined;
  const value = field.trim();
  if (value === '' || value === '-' || value.startsWith('[')) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function csvLines(output: string): string[][] {
  return output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('No running'))
    .map((line) => line.split(',').map((f) => f.trim()));
}

export function parseGpuQuery(output: string): GpuSample[] {
  return csvLines(output).flatMap(([index, uuid, name, used, total, util]) => {
    const i = num(index);
    if (i === undefined || !uuid) return [];
    const usedMiB = num(used);
    const totalMiB = num(total);
    const utilPct = num(util);
    return [
      {
        index: i,
        uuid,
        name: name ?? '',
        ...(usedMiB !== undefined ? { memoryUsedBytes: usedMiB * MIB } : {}),
        ...(totalMiB !== undefined ? { memoryTotalBytes: totalMiB * MIB } : {}),
        ...(utilPct !== undefined ? { utilization: utilPct / 100 } : {}),
      },
    ];
  });
}

export function parseComputeApps(output: string): GpuProcessSample[] {
  return csvLines(output).flatMap(([pid, gpuUuid, used]) => {
    const p = num(pid);
    if (p === undefined || !gpuUuid) return [];
    const usedMiB = num(used);
    return [{ pid: p, gpuUuid, ...(usedMiB !== undefined ? { memoryUsedBytes: usedMiB * MIB } : {}) }];
  });
}

/**
 * `nvidia-smi pmon -c 1 -s u`: two `#` header lines naming the columns, then one row per process
 * (or a row of dashes for an idle GPU). Columns are found by name, since drivers add some (e.g. jpg, ofa).
 */
export function parsePmon(output: string): GpuProcessUtilization[] {
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('#') && /\bpid\b/.test(l));
  if (!header) return [];
  const columns = header.replace(/^#\s*/, '').trim().split(/\s+/);
  const at = (name: string) => columns.indexOf(name);
  const [gpuAt, pidAt, smAt] = [at('gpu'), at('pid'), at('sm')];
  if (gpuAt < 0 || pidAt < 0) return [];
  return lines
    .filter((l) => !l.startsWith('#'))
    .flatMap((line) => {
      const fields = line.trim().split(/\s+/);
      const gpu = num(fields[gpuAt]);
      const pid = num(fields[pidAt]);
      if (gpu === undefined || pid === undefined) return [];
      const sm = smAt >= 0 ? num(fields[smAt]) : undefined;
      return [{ gpu, pid, ...(sm !== undefined ? { sm: sm / 100 } : {}) }];
    });
}

export type NvidiaSmiRunner = (args: string[]) => Promise<string>;

const runNvidiaSmi: NvidiaSmiRunner = async (args) => (await execa('nvidia-smi', args, { timeout: 10_000 })).stdout;

/** Polls nvidia-smi every `intervalMs` while there is one; `latest` is null until the first answer. */
export class GpuMonitor {
  latest: GpuSnapshot | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly intervalMs = 5000,
    private readonly run: NvidiaSmiRunner = runNvidiaSmi,
  ) {}

  /** Resolves after the first poll: true when nvidia-smi answered (polling goes on), false when there is none. */
  async start(): Promise<boolean> {
    const ok = await this.poll();
    if (ok && !this.stopped) this.schedule();
    return ok;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.poll().finally(() => {
        if (!this.stopped) this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  private async poll(): Promise<boolean> {
    let gpus: GpuSample[];
    try {
      gpus = parseGpuQuery(await this.run(GPU_QUERY_ARGS));
    } catch {
      return false;
    }
    const [processes, utilization] = await Promise.all([
      this.run(APPS_QUERY_ARGS).then(parseComputeApps, () => []),
      // pmon is not supported on every GPU/driver (and not inside MIG instances): optional.
      this.run(PMON_ARGS).then(parsePmon, () => []),
    ]);
    this.latest = { at: Date.now(), gpus, processes, utilization };
    return true;
  }
}
