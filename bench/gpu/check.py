#!/usr/bin/env python3
"""The measuring half of bench/gpu/check.sh: whisper-server over its HTTP API, Python standard library only
(no Node.js on a bare GPU host). Reads .gpu-payload/manifest.json (bench/gpu/prepare.ts) and writes
result.json and result.md into the output folder. Every phase records its own error or "skipped" and
the others still run; the exit status is 1 when a phase failed or the real-weight texts differ.

  python3 bench/gpu/check.py --mode gpu|cpu --binary BIN --payload DIR --out DIR --random-model FILE
      [--random-model-rc FILE] [--logdir DIR] [--build-json FILE] [--deadline EPOCH_SECONDS] [--started EPOCH_SECONDS]
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.error
import urllib.request
import uuid
import wave
import io
import math

# What each mode measures. The CPU mode runs the same code on smaller steps so it is known to work.
PLANS = {
    "gpu": {"durations": [2, 5, 10], "beams": [1, 5], "repeats": 3, "levels": [1, 2, 4, 8, 16], "level_seconds": 20, "threads": 4},
    "cpu": {"durations": [2, 5], "beams": [1, 5], "repeats": 1, "levels": [1, 2], "level_seconds": 6, "threads": 2},
}
CONCURRENCY_AUDIO_S = 5
CONCURRENCY_BEAM = 5
SAMPLE_RATE = 16000
# Reserved at the end for stopping workers and writing the result.
FINAL_RESERVE_S = 20

started_at = time.time()


def log(msg):
    print(f"check [{time.time() - started_at:6.1f} s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------- text
# A port of engine/wer.ts normalizeText; prepare.ts ships its own outputs for probe strings and
# check_normaliser() proves the two agree before any text is compared.
HEBREW_MARKS = set(range(0x0591, 0x05BE)) | {0x05BF, 0x05C1, 0x05C2, 0x05C4, 0x05C5, 0x05C7}
WORD_INTERNAL_QUOTES = set("'\"\u2018\u2019\u201C\u201D\u05F3\u05F4")


def normalise(text):
    text = unicodedata.normalize("NFKC", text).lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" or ord(ch) in HEBREW_MARKS or ch in WORD_INTERNAL_QUOTES:
            continue
        out.append(" " if cat[0] in "PS" else ch)
    return " ".join("".join(out).split())


def word_errors(reference, hypothesis):
    """Word-level Levenshtein distance between normalised texts, and the reference's word count."""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)


def check_normaliser(manifest):
    probes = manifest.get("normalisation", [])
    disagree = [p for p in probes if normalise(p["text"]) != p["normalised"]]
    return {"probes": len(probes), "disagree": [{"text": p["text"], "ts": p["normalised"], "py": normalise(p["text"])} for p in disagree]}


# ---------------------------------------------------------------------------------------------- stats
def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def dist(values):
    if not values:
        return None
    return {"n": len(values), "mean": statistics.fmean(values), "p50": pct(values, 50), "p95": pct(values, 95), "max": max(values)}


# ---------------------------------------------------------------------------------------------- audio
def wav_bytes(pcm16):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(struct.pack(f"<{len(pcm16)}h", *pcm16))
    return buf.getvalue()


def synthetic_wav(seconds):
    """Speech-like noise (the same signal as bench/lib/gpu.ts): a random model does not care what it hears."""
    n = int(seconds * SAMPLE_RATE)
    return wav_bytes([int(32767 * 0.1 * math.sin(i / 7) * math.sin(i / 1300)) for i in range(n)])


# ---------------------------------------------------------------------------------------------- server
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One whisper-server process, started with the flags kol's LocalWorker uses (engine/whisper/worker.ts)."""

    def __init__(self, binary, model, gpu, threads, logdir, name):
        self.port = free_port()
        self.name = name
        self.log_path = os.path.join(logdir, f"{name}.log")
        args = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(self.port), "-t", str(threads), "-fa"]
        if not gpu:
            args.append("-ng")
        self.args = args
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        self.started = time.time()
        self.ready_s = None

    def wait_ready(self, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} while loading: {self.tail()}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        self.ready_s = time.time() - self.started
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")

    def tail(self, n=600):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM: whisper-server stops and prints whisper_print_timings (totals since it started)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return parse_timings(self.tail(4000))


TIMING = re.compile(r"whisper_print_timings:\s+(\w+) time =\s+([\d.]+) ms(?: /\s+(\d+) runs \(\s*([\d.]+) ms per run\))?")


def parse_timings(text):
    out = {}
    for name, total, runs, per_run in TIMING.findall(text):
        out[name] = {"ms": float(total), "runs": int(runs) if runs else None, "msPerRun": float(per_run) if per_run else None}
    return out


def infer(base, wav, fields, timeout=300):
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="audio.wav"\r\nContent-Type: audio/wav\r\n\r\n'.encode() + wav + b"\r\n"]
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(base + "/inference", data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    ms = (time.perf_counter() - t0) * 1000
    data = json.loads(raw)
    if "error" in data:
        raise RuntimeError(f"whisper-server: {data['error']}")
    return ms, data


def text_of(data):
    # As engine/whisper/client.ts joins them: segment texts carry their own leading spaces.
    return " ".join("".join(s.get("text", "") for s in data.get("segments", [])).split())


def tokens_of(data):
    return sum(len(s.get("tokens", [])) for s in data.get("segments", []))


def start_all(servers, timeout):
    for s in servers:
        s.wait_ready(timeout)


# ---------------------------------------------------------------------------------------------- devices
def nvidia_smi(*args):
    try:
        return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def memory_per_process(gpu, pids):
    """VRAM (GPU) or resident memory (CPU), MiB, per pid."""
    out = {}
    if gpu:
        for line in nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits").splitlines():
            try:
                pid, mib = [int(x.strip()) for x in line.split(",")]
            except ValueError:
                continue
            if pid in pids:
                out[pid] = mib
        # Inside a container nvidia-smi may not see the processes' pids: then the total used, split evenly.
        if not out and pids:
            used = nvidia_smi("--query-gpu=memory.used", "--format=csv,noheader,nounits").splitlines()
            if used:
                out = {"evenSplitOfTotal": int(used[0]) / len(pids)}
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[pid] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


class GpuSampler:
    """nvidia-smi every 500 ms: utilisation (%) and memory used (MiB). Nothing in CPU mode."""

    def __init__(self, gpu):
        self.gpu = gpu
        self.util, self.mem = [], []
        self.proc = None

    def __enter__(self):
        if self.gpu:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "500"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                u, m = [float(x.strip()) for x in line.split(",")]
            except ValueError:
                continue
            self.util.append(u)
            self.mem.append(m)

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()

    def summary(self):
        return {"utilPct": dist(self.util), "memUsedMiB": dist(self.mem)} if self.gpu else None


# ---------------------------------------------------------------------------------------------- phases
def phase_environment(args, plan):
    env = {"mode": args.mode, "cores": os.cpu_count(), "python": sys.version.split()[0], "plan": plan}
    if args.mode == "gpu":
        env["gpu"] = nvidia_smi("--query-gpu=name,compute_cap,driver_version,memory.total", "--format=csv,noheader")
        env["nvcc"] = subprocess.run(["bash", "-c", "nvcc --version | tail -2 | head -1"], capture_output=True, text=True).stdout.strip()
    if args.build_json and os.path.exists(args.build_json):
        with open(args.build_json) as f:
            env["build"] = json.load(f)
    return env


def phase_real_weights(args, manifest, logdir):
    """The real base q5_1 on the shipped clips: the text must be the CPU build's, and a reduced-window
    request in between must not change a later full-window one (what the masked-attention patches fix)."""
    rw = manifest["realWeights"]
    norm = check_normaliser(manifest)
    if norm["disagree"]:
        raise RuntimeError(f"normalise() disagrees with engine/wer.ts on {norm['disagree']}")
    server = Server(args.binary, os.path.join(args.payload, rw["model"]), args.mode == "gpu", PLANS[args.mode]["threads"], logdir, "real-weights")
    try:
        server.wait_ready(120)
        rows = []
        for clip in rw["clips"]:
            with open(os.path.join(args.payload, clip["wav"]), "rb") as f:
                wav = f.read()
            fields = dict(rw["fields"], language=clip["language"])
            ms, full = infer(server.base, wav, fields)
            infer(server.base, wav, dict(fields, audio_ctx=str(clip["audioCtx"])))
            _, again = infer(server.base, wav, fields)
            text = text_of(full)
            errors, words = word_errors(clip["cpuText"], text)
            rows.append({
                "clip": clip["name"], "seconds": clip["seconds"], "ms": ms, "tokens": tokens_of(full),
                "text": text, "cpuText": clip["cpuText"], "identical": text == clip["cpuText"],
                "sameNormalised": normalise(text) == clip["cpuNormalised"], "wordErrorsVsCpu": errors, "words": words,
                "sameAfterReducedWindow": text_of(again) == text,
            })
            log(f"real weights {clip['name']}: {'identical' if text == clip['cpuText'] else 'DIFFERS'} ({ms:.0f} ms) {text}")
    finally:
        server.stop()
    errors = sum(r["wordErrorsVsCpu"] for r in rows)
    words = sum(r["words"] for r in rows)
    wer = errors / words if words else 0.0
    identical = sum(r["identical"] for r in rows)
    stable = sum(r["sameAfterReducedWindow"] for r in rows)
    # Identical text is what a correct kernel gives on these clips; a wrong mask gives other words, or none.
    verdict = "identical" if identical == len(rows) and stable == len(rows) else ("close" if wer <= 0.1 and stable == len(rows) else "differs")
    speech_s = sum(r["seconds"] for r in rows if r["clip"] != "jfk")
    he_tokens = sum(r["tokens"] for r in rows if r["clip"] != "jfk")
    return {
        "model": rw["model"], "fields": rw["fields"], "clips": rows, "identical": identical, "stableAfterReducedWindow": stable,
        "werVsCpu": wer, "verdict": verdict, "normaliser": {"probes": norm["probes"], "agrees": True},
        # Measured with real weights: what a Hebrew final decodes, for the streams-per-GPU estimate.
        "hebrewTokensPerSecond": he_tokens / speech_s if speech_s else None,
        "loadSeconds": server.ready_s,
    }


def phase_single(args, plan, manifest, logdir, deadline):
    """One request at a time: 2, 5, 10 s of audio, beam 1 and 5, full window, random weights. One server
    per beam, so each one's exit timings (encode / decode / batched decode per run) belong to one beam."""
    gpu = args.mode == "gpu"
    servers = {beam: Server(args.binary, args.random_model, gpu, plan["threads"], logdir, f"single-beam{beam}") for beam in plan["beams"]}
    rows, timings = [], {}
    try:
        start_all(servers.values(), 300)
        for beam, server in servers.items():
            fields = manifest["bench"]["fields"][str(beam)]
            for seconds in plan["durations"]:
                if time.time() > deadline:
                    rows.append({"audioS": seconds, "beam": beam, "skipped": "out of time"})
                    continue
                wav = synthetic_wav(seconds)
                times, tokens = [], []
                for r in range(plan["repeats"] + 1):
                    ms, data = infer(server.base, wav, fields)
                    if r == 0:
                        continue  # warm-up
                    times.append(ms)
                    tokens.append(tokens_of(data))
                row = {"audioS": seconds, "beam": beam, "ms": dist(times), "tokens": dist(tokens)}
                rows.append(row)
                log(f"single {seconds} s beam {beam}: {row['ms']['p50']:.0f} ms p50, {row['tokens']['mean']:.0f} tokens")
    finally:
        for beam, server in servers.items():
            timings[str(beam)] = server.stop()
    return {"rows": rows, "serverTimings": timings, "loadSeconds": {str(b): s.ready_s for b, s in servers.items()}}


def phase_concurrency(args, plan, manifest, logdir, deadline):
    """N worker processes on one GPU, N clients each sending 5 s requests (beam 5, full window) back to
    back to its own worker for a fixed time: throughput, latency p50/p95, GPU utilisation, memory."""
    gpu = args.mode == "gpu"
    levels = plan["levels"]
    threads = max(1, (os.cpu_count() or 1) // max(levels))
    fields = manifest["bench"]["fields"][str(CONCURRENCY_BEAM)]
    wav = synthetic_wav(CONCURRENCY_AUDIO_S)
    workers = [Server(args.binary, args.random_model, gpu, threads, logdir, f"worker{i}") for i in range(max(levels))]
    result = {"threadsPerWorker": threads, "audioS": CONCURRENCY_AUDIO_S, "beam": CONCURRENCY_BEAM, "levels": []}
    try:
        t0 = time.time()
        start_all(workers, 300)
        result["allReadySeconds"] = time.time() - t0
        # One request each, all at once: CUDA pools and graphs are allocated at the first inference.
        warm = [threading.Thread(target=infer, args=(w.base, wav, fields)) for w in workers]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        pids = [w.proc.pid for w in workers]
        mem = memory_per_process(gpu, set(pids))
        result["memoryPerWorkerMiB"] = {"unit": "VRAM" if gpu else "RSS", "perPid": {str(k): v for k, v in mem.items()},
                                        "mean": statistics.fmean(mem.values()) if mem else None}
        if gpu:
            idle = nvidia_smi("--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits").split(",")
            result["gpuMemoryUsedTotalMiB"] = [float(x) for x in idle] if len(idle) == 2 else None
        for idx, n in enumerate(levels):
            # Share what time is left among the levels still to run; each also needs time for its
            # slowest request in flight to finish (guessed from the level before, scaled by workers).
            left = len(levels) - idx
            prev = result["levels"][-1] if result["levels"] else None
            drain = 1.5 * prev["latencyMs"]["max"] / 1000 * n / prev["workers"] if prev and prev.get("latencyMs") else 10
            seconds = min(plan["level_seconds"], (deadline - time.time() - drain * left) / left)
            if seconds < 3:
                result["levels"].append({"workers": n, "skipped": "out of time"})
                log(f"concurrency {n}: skipped, out of time")
                continue
            latencies, lock = [], threading.Lock()
            errors = []
            stop_at = time.time() + seconds

            def client(worker):
                while time.time() < stop_at:
                    try:
                        ms, _ = infer(worker.base, wav, fields)
                    except Exception as err:  # noqa: BLE001 - recorded, not fatal
                        errors.append(str(err))
                        return
                    with lock:
                        latencies.append((time.time(), ms))

            began = time.time()
            with GpuSampler(gpu) as sampler:
                clients = [threading.Thread(target=client, args=(w,)) for w in workers[:n]]
                for c in clients:
                    c.start()
                for c in clients:
                    c.join()
            elapsed = time.time() - began
            ms = [m for _, m in latencies]
            row = {"workers": n, "seconds": elapsed, "requests": len(ms), "throughputPerS": len(ms) / elapsed if elapsed else None,
                   # Every client is always busy, so n requests are in flight at any time (Little's law):
                   # the sustained rate, without the tail where the last requests drain.
                   "sustainedPerS": n / (statistics.fmean(ms) / 1000) if ms else None,
                   "audioSecondsPerS": len(ms) * CONCURRENCY_AUDIO_S / elapsed if elapsed else None,
                   "latencyMs": dist(ms), "gpu": sampler.summary(), "errors": errors[:3]}
            result["levels"].append(row)
            log(f"concurrency {n}: {len(ms)} requests in {elapsed:.1f} s, p50 {row['latencyMs']['p50'] if ms else 0:.0f} ms, p95 {row['latencyMs']['p95'] if ms else 0:.0f} ms")
    finally:
        for w in workers:
            w.stop()
    return result


# ---------------------------------------------------------------------------------------------- sizing
def sizing(result, manifest):
    """Computed, not measured: streams per GPU at final p95 ≤ the target, from the measured GPU numbers and
    the pipeline's inputs in the manifest (docs/DEPLOY.md, "Streams per GPU", says the same in words)."""
    inputs = manifest.get("sizing")
    single = result.get("single") or {}
    conc = result.get("concurrency") or {}
    real = result.get("realWeights") or {}
    try:
        row = next(r for r in single["rows"] if r.get("audioS") == CONCURRENCY_AUDIO_S and r.get("beam") == CONCURRENCY_BEAM and "ms" in r)
        step = single["serverTimings"][str(CONCURRENCY_BEAM)]["batchd"]["msPerRun"]
        rate = real["hebrewTokensPerSecond"]
    except (KeyError, StopIteration, TypeError):
        return {"inputs": inputs, "computed": None, "why": "a phase it needs did not run"}
    # A random model decodes to whisper's cap; a Hebrew final decodes what its speech holds. The step time
    # (one batched beam-search decode) is the same per token, the rest of the request is fixed.
    random_tokens = row["tokens"]["mean"]
    random_ms = row["ms"]["mean"]
    fixed_ms = max(0.0, random_ms - random_tokens * step)
    real_tokens = rate * inputs["finalAudioSeconds"]
    scale = (fixed_ms + real_tokens * step) / random_ms
    budget_s = inputs["latencyTargetS"] - inputs["finalStartS"]
    rows = []
    for lvl in conc.get("levels", []):
        if not lvl.get("latencyMs"):
            continue
        p95 = lvl["latencyMs"]["p95"] / 1000 * scale
        throughput = lvl["sustainedPerS"] / scale
        fits = p95 <= budget_s
        streams = math.floor(inputs["targetBusy"] * throughput * inputs["secondsPerFinal"]) if fits else 0
        # At the p95 the workers are busy, so the final did not start inside the pause but after it.
        final_p95 = inputs["finalStartS"] + p95
        rows.append({"workers": lvl["workers"], "finalP95S": final_p95, "finalsPerS": throughput, "fits": fits, "streams": streams})
    best = max(rows, key=lambda r: r["streams"], default=None)
    return {"inputs": inputs, "scale": scale, "fixedMs": fixed_ms, "stepMs": step, "randomTokens": random_tokens, "realTokensPerFinal": real_tokens,
            "gpuBudgetS": budget_s, "rows": rows, "streamsPerGpu": best["streams"] if best else None, "atWorkers": best["workers"] if best else None}


# ---------------------------------------------------------------------------------------------- report
def fmt(v, d=0):
    return "–" if v is None else f"{v:.{d}f}"


def not_run(phase):
    return f"Failed: {phase['error']}" if isinstance(phase, dict) and "error" in phase else "Not run (see Failures)."


def markdown(result):
    env = result["environment"]
    lines = [f"# GPU check ({env['mode']} mode)", "", f"Date: {result['date']}. Wall time: {result['wallSeconds']:.0f} s. "
             f"Cores: {env['cores']}. GPU: {env.get('gpu') or 'none'}. {env.get('nvcc') or ''}", ""]
    b = result.get("build") or {}
    lines += ["## Build", "", f"whisper-server ({b.get('kind')}, CMAKE_CUDA_ARCHITECTURES={b.get('cudaArch') or '–'}): "
              f"**{fmt(b.get('seconds'))} s** with -j {b.get('jobs')}{' (incremental: build folder reused)' if b.get('incremental') else ''}, "
              f"{fmt((b.get('binaryBytes') or 0) / 1e6, 1)} MB.", ""]
    if b.get("ldd"):
        lines += ["```", b["ldd"].rstrip(), "```", ""]
    rw = result.get("realWeights")
    lines += ["## Real weights: this build's text against the CPU build's (measured)", ""]
    if isinstance(rw, dict) and "clips" in rw:
        lines += [f"`{rw['model']}`, beam 5, full window (kol's final request). Verdict: **{rw['verdict']}** — identical "
                  f"{rw['identical']}/{len(rw['clips'])}, unchanged after a reduced-window request {rw['stableAfterReducedWindow']}/{len(rw['clips'])}, "
                  f"WER against the CPU text {rw['werVsCpu']:.3f}.", "",
                  "| clip | s | ms | identical | text |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['clip']} | {r['seconds']:.1f} | {r['ms']:.0f} | {'yes' if r['identical'] else 'no'} | {r['text']} |" for r in rw["clips"]]
    else:
        lines.append(not_run(rw))
    lines += ["", f"## One request at a time, random-weight {env.get('randomModel')} (measured)", "",
              "Full 30 s window, temperature fallback off. A random model's token count is not speech's (the tokens column): "
              "large-v3-turbo's usually runs to whisper's cap, a worst case; the streams estimate below rescales it.", "",
              "| audio (s) | beam | ms p50 | ms p95 | tokens |", "| --- | --- | --- | --- | --- |"]
    single = result.get("single")
    if isinstance(single, dict) and "rows" in single:
        for r in single["rows"]:
            if "ms" in r:
                lines.append(f"| {r['audioS']} | {r['beam']} | {r['ms']['p50']:.0f} | {r['ms']['p95']:.0f} | {r['tokens']['mean']:.0f} |")
            else:
                lines.append(f"| {r['audioS']} | {r['beam']} | {r.get('skipped')} | | |")
        for beam, t in single["serverTimings"].items():
            parts = [f"{k} {v['msPerRun']:.2f} ms/run × {v['runs']}" for k, v in t.items() if v.get("msPerRun") is not None and v.get("runs", 0) > 0]
            lines.append(f"\nbeam {beam} server timings: {', '.join(parts)}")
    else:
        lines.append(not_run(single))
    conc = result.get("concurrency")
    lines += ["", "## Workers on one GPU (measured)", ""]
    if isinstance(conc, dict) and "levels" in conc:
        mem = conc.get("memoryPerWorkerMiB") or {}
        lines += [f"Each client sends {conc['audioS']} s requests, beam {conc['beam']}, full window, back to back to its own worker; "
                  f"{conc['threadsPerWorker']} CPU threads per worker. Memory per worker ({mem.get('unit')}): {fmt(mem.get('mean'))} MiB.", "",
                  "| workers | requests | completed per s | sustained per s (n / mean latency) | p50 ms | p95 ms | GPU util mean % | GPU memory max MiB |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in conc["levels"]:
            if "skipped" in r:
                lines.append(f"| {r['workers']} | {r['skipped']} | | | | | | |")
                continue
            g = r.get("gpu") or {}
            u, m = g.get("utilPct") or {}, g.get("memUsedMiB") or {}
            lat = r.get("latencyMs") or {}
            lines.append(f"| {r['workers']} | {r['requests']} | {fmt(r['throughputPerS'], 2)} | {fmt(r['sustainedPerS'], 2)} | {fmt(lat.get('p50'))} | {fmt(lat.get('p95'))} | {fmt(u.get('mean'))} | {fmt(m.get('max'))} |")
    else:
        lines.append(not_run(conc))
    sz = result.get("sizing") or {}
    lines += ["", "## Streams per GPU at final p95 ≤ 1 s (computed, not measured)", ""]
    if env["mode"] == "cpu":
        lines += ["CPU mode: the toy model's numbers mean nothing; this only shows the arithmetic runs.", ""]
    if sz.get("rows"):
        i = sz["inputs"]
        lines += [f"Scale from the random model's {sz['randomTokens']:.0f} tokens to a Hebrew final's {sz['realTokensPerFinal']:.0f} "
                  f"({i['finalAudioSeconds']:.1f} s of audio): ×{sz['scale']:.3f} (fixed {sz['fixedMs']:.0f} ms + {sz['stepMs']:.2f} ms per beam step). "
                  f"A final every {i['secondsPerFinal']:.1f} s per speaker; workers {i['targetBusy']:.0%} busy; a final under load starts "
                  f"{i['finalStartS']:.3f} s after the end of speech (after the endpoint pause).", "",
                  "| workers | final p95 (s) | finals per s | fits | streams |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['workers']} | {r['finalP95S']:.2f} | {r['finalsPerS']:.2f} | {'yes' if r['fits'] else 'no'} | {r['streams']} |" for r in sz["rows"]]
        lines += ["", f"**Streams per GPU: {sz['streamsPerGpu']}** (at {sz['atWorkers']} workers)." if sz["streamsPerGpu"]
                  else "**No measured worker count meets the target.**"]
    else:
        lines.append(sz.get("why", "not computed"))
    if result.get("failures"):
        lines += ["", "## Failures", ""] + [f"- {f}" for f in result["failures"]]
    return "\n".join(lines) + "\n"


def wait_for_random_model(args, deadline):
    while not os.path.exists(args.random_model):
        if args.random_model_rc and os.path.exists(args.random_model_rc):
            with open(args.random_model_rc) as f:
                raise RuntimeError(f"make_random_ggml.py failed (exit {f.read().strip()})")
        if time.time() > deadline:
            raise RuntimeError("the random model was not written in time")
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["gpu", "cpu"], required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--payload", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--random-model", required=True)
    ap.add_argument("--random-model-rc")
    ap.add_argument("--random-preset", default="large-v3-turbo", help="make_random_ggml.py's shape of --random-model")
    ap.add_argument("--logdir", help="whisper-server logs (default OUT/logs)")
    ap.add_argument("--build-json")
    ap.add_argument("--deadline", type=float, default=time.time() + 3600)
    ap.add_argument("--started", type=float, default=time.time(), help="when check.sh began (epoch s), for the wall time")
    args = ap.parse_args()
    plan = PLANS[args.mode]
    with open(os.path.join(args.payload, "manifest.json")) as f:
        manifest = json.load(f)
    logdir = args.logdir or os.path.join(args.out, "logs")
    os.makedirs(logdir, exist_ok=True)
    deadline = args.deadline - FINAL_RESERVE_S
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "failures": []}
    result["environment"] = phase_environment(args, plan)
    result["environment"]["randomModel"] = args.random_preset
    if args.build_json and os.path.exists(args.build_json):
        result["build"] = result["environment"].pop("build")

    def run(name, fn, *a):
        log(f"phase {name}")
        try:
            result[name] = fn(*a)
        except Exception as err:  # noqa: BLE001 - one phase's failure is reported, the rest still run
            result[name] = {"error": f"{type(err).__name__}: {err}"}
            result["failures"].append(f"{name}: {type(err).__name__}: {err}")
            log(f"phase {name} FAILED: {err}")

    run("realWeights", phase_real_weights, args, manifest, logdir)
    try:
        wait_for_random_model(args, deadline)
        run("single", phase_single, args, plan, manifest, logdir, deadline)
        run("concurrency", phase_concurrency, args, plan, manifest, logdir, deadline)
    except RuntimeError as err:
        result["failures"].append(str(err))
    result["sizing"] = sizing(result, manifest)
    rw = result.get("realWeights") or {}
    if rw.get("verdict") == "differs":
        result["failures"].append("real weights: this build's text differs from the CPU build's")
    result["wallSeconds"] = time.time() - args.started
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
    with open(os.path.join(args.out, "result.md"), "w") as f:
        f.write(markdown(result))
    log(f"wrote {args.out}/result.json and result.md; failures: {len(result['failures'])}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
