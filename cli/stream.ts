/**
 * `kol stream`: a client of a running server. Streams an audio file in real time (or faster), or the
 * system microphone, to /v1/stream and prints the transcript as it comes: on a terminal the
 * partial is redrawn in place and each final gets its own line; piped, only the finals are
 * printed; with --json, every server message as one JSON line.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Command } from 'commander';
import { streamAudio, StreamRefusedError, type StreamResult } from '../clients/cli/stream-client.js';
import { decodeAudioFile } from '../engine/audio/wav.js';
import { toKolError } from '../engine/errors.js';
import type { ServerMessage } from '../server/dialects/protocol.js';
import { floatsToS16le, SAMPLE_RATE } from '../engine/audio/format.js';

interface StreamFlags {
  url: string;
  mic?: boolean;
  device?: string;
  speed: string;
  json?: boolean;
  language?: string;
  room?: string;
  token?: string;
  partials: boolean;
  prompt?: string;
}


export function register(program: Command): void {
  program
    .command('stream')
    .description('stream an audio file (or the microphone) to a running server and print the transcript live')
    .argument('[file]', 'audio file: WAV of any rate and channels (other formats through ffmpeg)')
    .option('-u, --url <url>', 'the server, ws:// or wss:// (/v1/stream is added when the URL has no path)', process.env.KOL_URL ?? 'ws://127.0.0.1:8009')
    .option('--mic', 'capture from the system microphone (arecord or sox) until Ctrl-C')
    .option('--device <name>', 'the microphone to use: an ALSA device for arecord (-D), or AUDIODEV for sox')
    .option('--speed <n>', 'send the file N times faster than real time, or "max" (the server allows 4x by default)', '1')
    .option('--json', 'print every server message as one JSON line')
    .option('-l, --language <code>', "spoken language, or \"auto\" (default: the server's)")
    .option('--room <name>', 'also publish the captions to this room (watch it at /overlay?room=NAME)')
    .option('--token <key>', 'API key, when the server needs one (default: KOL_TOKEN)')
    .option('--no-partials', 'ask for finals only')
    .option('--prompt <text>', 'words to expect (names, terms)')
    .addHelpText(
      'after',
      `
Examples:
  kol stream talk.wav                                   # real time, to ws://127.0.0.1:8009
  kol stream talk.wav --url ws://asr.example:8009 --speed 4
  kol stream talk.wav --json | jq -c 'select(.type=="final")'
  kol stream --mic --room studio                        # then open http://HOST:8009/overlay?room=studio`,
    )
    .action(async (file: string | undefined, flags: StreamFlags) => {
      process.exitCode = await runStream(file, flags);
    });
}

/** Returns the exit status: 0 when the server closed the stream normally, 1 on any failure. */
export async function runStream(file: string | undefined, flags: StreamFlags): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`kol stream: ${message}\n`);
    return 1;
  };
  if (flags.mic && file) return fail('give a file or --mic, not both.');
  if (!flags.mic && !file) return fail('give an audio file to stream, or --mic for the microphone (see kol stream --help).');

  let url: string;
  try {
    url = streamUrl(flags.url);
  } catch (err) {
    return fail((err as Error).message);
  }
  const speed = parseSpeed(flags.speed);
  if (speed === null) return fail(`--speed must be a number above 0, or "max"; got ${JSON.stringify(flags.speed)}.`);

  const config: Record<string, unknown> = {};
  if (flags.language) config.language = flags.language;
  if (flags.room) config.room = flags.room;
  if (flags.prompt) config.prompt = flags.prompt;
  if (!flags.partials) config.partials = false;

  // Piped into `head` or a closed pager: stop quietly, as command-line tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  // Not a commander default: help would print the key.
  const token = flags.token ?? process.env.KOL_TOKEN;
  const printer = new Printer(flags.json === true);
  const stop = new AbortController();
  let recorder: Recorder | null = null;
  let audio: Uint8Array | AsyncIterable<Uint8Array>;
  if (flags.mic) {
    const found = findRecorder();
    if (!found) {
      return fail(
        'recording from the microphone needs arecord or sox, and neither is on the PATH.\n' +
          '  Debian/Ubuntu: sudo apt install alsa-utils   (or: sudo apt install sox)\n' +
          '  Fedora:        sudo dnf install alsa-utils   (or: sudo dnf install sox)\n' +
          '  macOS:         brew install sox',
      );
    }
    recorder = startRecorder(found, flags.device);
    audio = recorder.audio;
    printer.note(`Listening on the microphone (${found.name}); press Ctrl-C to stop.`);
  } else {
    try {
      const decoded = await decodeAudioFile(file!);
      audio = floatsToS16le(decoded.pcm);
      printer.note(`Streaming ${path.basename(file!)} (${decoded.durationS.toFixed(1)} s) to ${url} at ${Number.isFinite(speed) ? `${speed}x` : 'full speed'}.`);
    } catch (err) {
      const e = toKolError(err);
      return fail(`${e.message} [${e.code}]`);
    }
  }

  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    printer.note('Finishing: the pending finals follow (Ctrl-C again to quit now).');
    stop.abort();
    recorder?.process.kill('SIGTERM');
  };
  process.on('SIGINT', onSigint);

  let result: StreamResult;
  try {
    result = await streamAudio({
      url,
      audio,
      speed,
      config: Object.keys(config).length > 0 ? config : undefined,
      headers: token ? { authorization: `Bearer ${token}` } : undefined,
      endSignal: stop.signal,
      onMessage: (message) => printer.message(message),
    });
  } catch (err) {
    printer.clearPartial();
    return fail(connectionProblem(err as Error, url));
  } finally {
    process.off('SIGINT', onSigint);
    recorder?.process.kill('SIGTERM');
  }
  printer.clearPartial();

  let status = printer.fatal ? 1 : 0;
  if (recorder && !stop.signal.aborted && recorder.failure()) status = fail(recorder.failure()!);
  if (result.closeCode !== 1000 && result.closeCode !== 1005 && !printer.fatal) {
    status = fail(`the server closed the connection (${result.closeCode}${result.closeReason ? ` ${result.closeReason}` : ''}).`);
  }
  printer.summary();
  return status;
}

/** ws://host:port → ws://host:port/v1/stream; http(s) becomes ws(s); a bare host:port gets ws://. */
export function streamUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z\d+.-]*:\/\//i.test(raw) ? raw : `ws://${raw}`);
  } catch {
    throw new Error(`${JSON.stringify(raw)} is not a URL; give one like ws://localhost:8009.`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`--url must be ws:// or wss://, not ${url.protocol}//.`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/stream';
  return url.toString();
}

function parseSpeed(raw: string): number | null {
  if (raw === 'max' || raw === 'inf' || raw === 'Infinity') return Infinity;
  const speed = Number(raw);
  return Number.isFinite(speed) && speed > 0 ? speed : null;
}

function connectionProblem(err: Error, url: string): string {
  if (err instanceof StreamRefusedError && err.code === 'server_at_capacity') {
    const retry = err.retryAfterSeconds !== null ? ` Try again in ${err.retryAfterSeconds} s.` : ' Try again shortly.';
    return `the server at ${url} is at capacity: it is already transcribing as many live streams as it can keep up with.${retry} [server_at_capacity]`;
  }
  const status = /Unexpected server response: (\d+)/.exec(err.message)?.[1];
  const code = (err as NodeJS.ErrnoException).code;
  switch (status) {
    case '401':
      return `the server at ${url} needs an API key: pass --token KEY or set KOL_TOKEN.`;
    case '403':
      return `the server at ${url} refused this API key or origin (HTTP 403).`;
    case '404':
      return `there is no streaming endpoint at ${url} (HTTP 404); the server's is at /v1/stream.`;
    case '503':
      return `the server at ${url} is not accepting sessions now (HTTP 503: shutting down or full); try again shortly.`;
    case undefined:
      break;
    default:
      return `the server at ${url} refused the WebSocket (HTTP ${status}).`;
  }
  if (code === 'ECONNREFUSED') return `could not connect to ${url}: connection refused. Is \`kol serve\` running there?`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `could not connect to ${url}: host not found.`;
  return `could not stream to ${url}: ${err.message}`;
}

/** What is printed, and how: a TTY gets the partial redrawn in place, a pipe only finals. */
class Printer {
  fatal = false;
  private readonly tty = process.stdout.isTTY === true;
  private partialShown = false;
  private readonly latencies: number[] = [];
  private segments = 0;
  private audioSeconds = 0;

  constructor(private readonly json: boolean) {}

  message(message: ServerMessage): void {
    if (message.type === 'error' && message.code === 'audio_too_fast' && !message.fatal) {
      // --speed above what the server allows: it reads at its own pace, nothing is lost.
      this.note(message.message);
    } else if (message.type === 'error') {
      this.fatal ||= message.fatal;
      this.clearPartial();
      process.stderr.write(`kol stream: ${message.fatal ? 'error' : 'warning'} from the server [${message.code}]: ${message.message}\n`);
    }
    if (message.type === 'final') {
      this.latencies.push(message.latency_ms);
      this.audioSeconds = Math.max(this.audioSeconds, message.end);
    }
    if (this.json) {
      process.stdout.write(`${JSON.stringify(message)}\n`);
      return;
    }
    if (message.type === 'partial' && this.tty) {
      const width = Math.max(20, (process.stdout.columns ?? 80) - 1);
      const chars = Array.from(message.text);
      const shown = chars.length > width ? `…${chars.slice(chars.length - width + 1).join('')}` : message.text;
      process.stdout.write(`\r\x1b[2K\x1b[2m${shown}\x1b[0m`);
      this.partialShown = true;
    } else if (message.type === 'final') {
      this.clearPartial();
      if (message.text.trim() !== '') {
        this.segments++;
        process.stdout.write(`${message.text.trim()}\n`);
      }
    }
  }

  clearPartial(): void {
    if (!this.partialShown) return;
    process.stdout.write('\r\x1b[2K');
    this.partialShown = false;
  }

  /** A line for people, on stderr and only on a terminal (stdout stays the transcript). */
  note(text: string): void {
    if (!process.stderr.isTTY) return;
    this.clearPartial();
    process.stderr.write(`\x1b[2m${text}\x1b[0m\n`);
  }

  summary(): void {
    if (this.latencies.length === 0) return;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    this.note(`${this.segments} segment(s), ${this.audioSeconds.toFixed(1)} s of audio, final latency median ${Math.round(median)} ms.`);
  }
}

interface RecorderCommand {
  name: string;
  command: string;
  args: string[];
}

/** arecord (ALSA) first, then sox (`sox -d`) or its `rec`; null when none is on the PATH. */
export function findRecorder(pathEnv = process.env.PATH ?? ''): RecorderCommand | null {
  const raw = ['-t', 'raw', '-r', String(SAMPLE_RATE), '-e', 'signed-integer', '-b', '16', '-c', '1', '-L', '-'];
  const candidates: RecorderCommand[] = [
    { name: 'arecord', command: 'arecord', args: ['-q', '-t', 'raw', '-f', 'S16_LE', '-r', String(SAMPLE_RATE), '-c', '1'] },
    { name: 'sox', command: 'sox', args: ['-q', '-d', ...raw] },
    { name: 'rec', command: 'rec', args: ['-q', ...raw] },
  ];
  for (const candidate of candidates) {
    const found = which(candidate.command, pathEnv);
    if (found) return { ...candidate, command: found };
  }
  return null;
}

function which(command: string, pathEnv: string): string | null {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) continue;
    const full = path.join(dir, command);
    try {
      fs.accessSync(full, fs.constants.X_OK);
      if (fs.statSync(full).isFile()) return full;
    } catch {
      // not here
    }
  }
  return null;
}

interface Recorder {
  process: ChildProcessByStdio<null, Readable, Readable>;
  /** The recorded PCM. */
  audio: AsyncIterable<Uint8Array>;
  /** Why the recorder failed, once it has; null while it runs or when it ended well. */
  failure(): string | null;
}

function startRecorder(found: RecorderCommand, device: string | undefined): Recorder {
  const args = found.name === 'arecord' && device ? [...found.args, '-D', device] : found.args;
  const env = found.name !== 'arecord' && device ? { ...process.env, AUDIODEV: device } : process.env;
  const child = spawn(found.command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  let failure: string | null = null;
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4000) stderr += chunk.toString();
  });
  child.on('error', (err) => {
    failure = `${found.name} could not be started: ${err.message}`;
  });
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null && !signal) failure = `${found.name} stopped with exit code ${code}${stderr.trim() ? `: ${stderr.trim()}` : ''}`;
  });
  // Consumed from the start: Node discards what an exited child wrote to a pipe nobody reads yet.
  const audio = child.stdout.pipe(new PassThrough());
  return { process: child, audio, failure: () => failure };
}
