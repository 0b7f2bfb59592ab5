/**
 * CPU time and resident memory of a process and everything under it (a server and its whisper-server
 * workers), read from /proc, and of the whole machine: what the bench spent, and what others did.
 */
import fs from 'node:fs';
import { clockTicks, machineBusySeconds } from './machine.js';

interface ProcStat {
  pid: number;
  ppid: number;
  cpuSeconds: number;
  rssBytes: number;
}

function readStat(pid: number): ProcStat | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: split after its closing one.
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { pid, ppid, cpuSeconds: (utime + stime) / clockTicks(), rssBytes: rssPages * 4096 };
  } catch {
    return null;
  }
}

/** The process and all its descendants. */
export function processTree(root: number): ProcStat[] {
  let all: ProcStat[];
  try {
    all = fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((d) => readStat(Number(d)))
      .filter((p): p is ProcStat => p !== null);
  } catch {
    return [];
  }
  const result: ProcStat[] = [];
  const wanted = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (!wanted.has(p.pid) && wanted.has(p.ppid)) {
        wanted.add(p.pid);
        grew = true;
      }
    }
  }
  for (const p of all) if (wanted.has(p.pid)) result.push(p);
  return result;
}

export interface UsageWindow {
  /** CPU seconds of the tree over the window, split into the root process and its descendants. */
  rootCpuS: number;
  childCpuS: number;
  wallS: number;
  /** Highest resident memory seen (bytes), root and descendants summed. */
  maxRootRss: number;
  maxChildRss: number;
  /** Cores' worth of CPU used by everything else on the machine during the window (other people's runs included). */
  foreignCores: number | null;
}

/**
 * Samples a process tree every `intervalMs` until stopped. Descendants that exit during the window
 * lose their last interval (fine for long-lived workers). `ownPids` are other processes of the bench
 * (clients) not to count as foreign load.
 */
export function sampleUsage(root: number, intervalMs = 1000, ownRoots: number[] = [process.pid]): { stop(): UsageWindow } {
  const started = performance.now();
  const machine0 = machineBusySeconds();
  const baseline = new Map<number, number>();
  const lastSeen = new Map<number, number>();
  const ownBaseline = new Map<number, number>();
  const ownLast = new Map<number, number>();
  let maxRootRss = 0;
  let maxChildRss = 0;
  const take = (first: boolean) => {
    let childRss = 0;
    for (const p of processTree(root)) {
      if (first) baseline.set(p.pid, p.cpuSeconds);
      else if (!baseline.has(p.pid)) baseline.set(p.pid, 0);
      lastSeen.set(p.pid, p.cpuSeconds);
      if (p.pid === root) maxRootRss = Math.max(maxRootRss, p.rssBytes);
      else childRss += p.rssBytes;
    }
    maxChildRss = Math.max(maxChildRss, childRss);
    for (const own of ownRoots) {
      for (const p of processTree(own)) {
        if (p.pid === root || baseline.has(p.pid)) continue;
        if (first) ownBaseline.set(p.pid, p.cpuSeconds);
        else if (!ownBaseline.has(p.pid)) ownBaseline.set(p.pid, 0);
        ownLast.set(p.pid, p.cpuSeconds);
      }
    }
  };
  take(true);
  const timer = setInterval(() => take(false), intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      take(false);
      const wallS = (performance.now() - started) / 1000;
      let rootCpuS = 0;
      let childCpuS = 0;
      for (const [pid, last] of lastSeen) {
        const used = last - (baseline.get(pid) ?? 0);
        if (pid === root) rootCpuS += used;
        else childCpuS += used;
      }
      let ownCpuS = 0;
      for (const [pid, last] of ownLast) ownCpuS += last - (ownBaseline.get(pid) ?? 0);
      const machine1 = machineBusySeconds();
      const foreignCores = machine0 === null || machine1 === null ? null : Math.max(0, (machine1 - machine0 - rootCpuS - childCpuS - ownCpuS) / wallS);
      return { rootCpuS, childCpuS, wallS, maxRootRss, maxChildRss, foreignCores };
    },
  };
}
