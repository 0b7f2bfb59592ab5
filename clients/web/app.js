// @ts-check
/**
 * The microphone page: Start/Stop, the live partial and the growing transcript (right to left for
 * Hebrew) with each segment's latency, the connection state, and copy/download as text or WebVTT.
 *
 * Settings are remembered in localStorage. URL parameters: token (API key, passed on to the
 * server), language, room (pre-fill the fields),
 * stop_after (stop by itself after that many seconds of audio: demos, kiosks and tests).
 */
import { LiveStream } from './live-stream.js';
import { MicCapture } from './mic.js';
import { clockTime, Transcript } from './transcript.js';
import { pageUrl, ROOM_NAME, socketUrl } from './urls.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const params = new URLSearchParams(location.search);
const RTL_LANGUAGES = new Set(['he', 'ar', 'fa', 'ur', 'yi']);

const els = {
  toggle: /** @type {HTMLButtonElement} */ ($('toggle')),
  toggleLabel: $('toggle-label'),
  status: $('status'),
  statusText: $('status-text'),
  level: $('level'),
  language: /** @type {HTMLSelectElement} */ ($('language')),
  room: /** @type {HTMLInputElement} */ ($('room')),
  echo: /** @type {HTMLInputElement} */ ($('echo')),
  overlayLink: /** @type {HTMLAnchorElement} */ ($('overlay-link')),
  alert: $('alert'),
  alertText: $('alert-text'),
  transcript: $('transcript'),
  empty: $('empty'),
  clock: $('clock'),
  toast: $('toast'),
  actions: /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('[data-export]')]),
  clear: /** @type {HTMLButtonElement} */ ($('clear')),
};

const transcript = new Transcript();
/** @type {LiveStream | null} */
let live = null;
/** @type {MicCapture | null} */
let mic = null;
/** @typedef {'idle' | 'starting' | 'running' | 'stopping'} Phase */
/** @type {Phase} */
let phase = 'idle';
/** @type {HTMLElement | null} the partial's row, replaced in place */
let partialRow = null;
let partialKey = '';
const stopAfter = Number(params.get('stop_after')) || 0;

// ── settings: URL parameters first, then what was used last time

els.language.value = params.get('language') ?? localStorage.getItem('kol.language') ?? 'he';
if (!els.language.value) els.language.value = 'he';
els.room.value = params.get('room') ?? localStorage.getItem('kol.room') ?? '';
els.echo.checked = localStorage.getItem('kol.echo') === '1';
els.echo.addEventListener('change', () => localStorage.setItem('kol.echo', els.echo.checked ? '1' : '0'));
applyDirection();
updateOverlayLink();
els.language.addEventListener('change', () => {
  localStorage.setItem('kol.language', els.language.value);
  applyDirection();
});
els.room.addEventListener('input', () => {
  const valid = els.room.value === '' || ROOM_NAME.test(els.room.value);
  els.room.setCustomValidity(valid ? '' : 'Letters, digits, ".", "_" or "-", at most 64.');
  if (valid) localStorage.setItem('kol.room', els.room.value);
  updateOverlayLink();
});

function applyDirection() {
  const rtl = RTL_LANGUAGES.has(els.language.value) || els.language.value === 'auto';
  els.transcript.dir = rtl ? 'rtl' : 'ltr';
  els.transcript.lang = els.language.value === 'auto' ? '' : els.language.value;
}

function updateOverlayLink() {
  const room = els.room.value.trim();
  els.overlayLink.hidden = !ROOM_NAME.test(room);
  if (!els.overlayLink.hidden) {
    els.overlayLink.href = pageUrl('overlay', { room });
    els.overlayLink.title = `Caption overlay for room "${room}" (an OBS browser source): ${els.overlayLink.href}`;
  }
}

// ── start and stop

els.toggle.addEventListener('click', () => {
  if (phase === 'idle') void start();
  else if (phase === 'running') void stop();
});

async function start() {
  const room = els.room.value.trim();
  if (room !== '' && !ROOM_NAME.test(room)) {
    showAlert('The room name may only hold letters, digits, ".", "_" or "-" (at most 64).');
    return;
  }
  hideAlert();
  setPhase('starting');
  setStatus('connecting', 'Opening the microphone…');

  const stream = new LiveStream({
    url: () =>
      socketUrl('v1/stream', {
        sample_rate: 16000,
        encoding: 'pcm_s16le',
        channels: 1,
        language: els.language.value,
        room: room || null,
      }),
    onEvent: onLiveEvent,
  });
  live = stream;
  let stopping = false;
  const capture = new MicCapture({
    onAudio: (pcm, level) => {
      showLevel(level.rms, level.peak);
      if (stopping) return;
      let chunk = pcm;
      if (stopAfter > 0) {
        const left = Math.round(stopAfter * 16000) - Math.round(stream.capturedSeconds * 16000);
        if (left <= chunk.length) {
          chunk = chunk.subarray(0, Math.max(0, left));
          stopping = true;
          queueMicrotask(() => void stop());
        }
      }
      stream.push(chunk);
      els.clock.textContent = clockTime(stream.capturedSeconds);
    },
    onEnded: (message) => {
      showAlert(message);
      void stop();
    },
  }, { echoCancellation: els.echo.checked });
  mic = capture;
  try {
    await capture.start();
  } catch (err) {
    live = null;
    mic = null;
    setPhase('idle');
    setStatus('error', 'Microphone unavailable');
    showAlert(/** @type {Error} */ (err).message);
    return;
  }
  if (live !== stream) return; // stopped while the microphone was opening
  stream.start();
  setPhase('running');
}

async function stop() {
  if (phase !== 'running' && phase !== 'starting') return;
  setPhase('stopping');
  const capture = mic;
  const stream = live;
  mic = null;
  live = null;
  await capture?.stop();
  showLevel(0, 0);
  // Stopped before it ever connected (the microphone was still opening): nothing to finish.
  if (stream && stream.ws === null) stream.abort();
  else if (stream) await stream.finish();
  setPhase('idle');
}

/** @param {Phase} next */
function setPhase(next) {
  phase = next;
  document.documentElement.dataset.phase = next;
  els.toggle.disabled = next === 'starting' || next === 'stopping';
  els.toggle.classList.toggle('recording', next === 'running' || next === 'stopping');
  els.toggleLabel.textContent = next === 'running' ? 'Stop' : next === 'stopping' ? 'Finishing…' : next === 'starting' ? 'Starting…' : 'Start';
  els.language.disabled = next !== 'idle';
  els.room.disabled = next !== 'idle';
  els.echo.disabled = next !== 'idle';
}

// ── what the stream reports

/** @param {import('./live-stream.js').LiveEvent} event */
function onLiveEvent(event) {
  switch (event.type) {
    case 'state':
      onState(event);
      break;
    case 'ready':
      if (typeof event.config?.room === 'string') els.status.title = `Publishing to room "${event.config.room}"`;
      break;
    case 'partial':
      showPartial(event.key, event.stable, event.unstable, event.start);
      break;
    case 'final':
      addFinal(event);
      break;
    case 'error':
      if (event.key !== undefined && partialKey === event.key) clearPartial();
      // audio_too_fast: the audio resent after a reconnection goes faster than real time, and
      // the server reads it at its own pace; nothing is lost.
      if (event.fatal || !['session_ended', 'config_after_audio', 'audio_too_fast'].includes(event.code)) {
        showAlert(`${event.message}`, event.code, event.fatal ? 'error' : 'warning');
      }
      break;
    case 'notice':
      showAlert(event.message, undefined, 'warning');
      break;
  }
}

let probeSerial = 0;

/** @param {Extract<import('./live-stream.js').LiveEvent, { type: 'state' }>} event */
function onState(event) {
  switch (event.state) {
    case 'connecting':
      setStatus('connecting', 'Connecting…');
      break;
    case 'live':
      setStatus('live', 'Live');
      hideAlert('connection');
      if (partialRow) partialRow.classList.remove('stale');
      break;
    case 'reconnecting': {
      partialRow?.classList.add('stale');
      const wait = event.delayMs ? ` in ${Math.max(1, Math.round(event.delayMs / 1000))} s` : '';
      setStatus('reconnecting', `Connection lost: reconnecting${wait}${event.attempt && event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}…`);
      if (event.delayMs && !event.everOpened) void explainRefusal(++probeSerial, event.attempt ?? 1);
      break;
    }
    case 'finishing':
      setStatus('finishing', 'Finishing: waiting for the last words…');
      break;
    case 'closed':
      clearPartial();
      setStatus('idle', transcript.isEmpty ? 'Ready' : 'Stopped');
      break;
    case 'failed':
      clearPartial();
      setStatus('error', 'Stopped: the server refused the session');
      void stopAfterFailure();
      break;
  }
}

async function stopAfterFailure() {
  const capture = mic;
  mic = null;
  live = null;
  await capture?.stop();
  showLevel(0, 0);
  setPhase('idle');
}

/**
 * A connection that never opened: the server is down, still starting, or refuses us (a missing
 * API key or a foreign origin look the same to a browser). Ask /readyz which.
 * @param {number} serial
 * @param {number} attempt
 */
async function explainRefusal(serial, attempt) {
  let reachable = false;
  let ready = false;
  try {
    const res = await fetch(new URL('readyz', location.href), { cache: 'no-store' });
    reachable = true;
    ready = res.ok;
  } catch {
    reachable = false;
  }
  if (serial !== probeSerial || !live) return;
  if (!reachable) {
    showAlert('The server cannot be reached. The page keeps trying and resends what you said meanwhile.', undefined, 'warning', 'connection');
  } else if (!ready) {
    showAlert('The server is starting or restarting. The page keeps trying.', undefined, 'warning', 'connection');
  } else if (attempt >= 2) {
    const hasToken = new URL(location.href).searchParams.has('token');
    live.abort();
    await stopAfterFailure();
    setStatus('error', 'Refused by the server');
    showAlert(
      hasToken
        ? 'The server refused the connection: the API key in this page\'s address (?token=…) is not accepted, or this site is not an allowed origin.'
        : 'The server refused the connection. If it needs an API key, open this page as …/?token=YOUR_KEY.',
      'unauthorized',
      'error',
    );
  }
}

// ── the transcript on screen

/**
 * @param {string} key
 * @param {string} stable
 * @param {string} unstable
 * @param {number} start
 */
function showPartial(key, stable, unstable, start) {
  if (!partialRow || partialKey !== key) {
    clearPartial();
    partialRow = segmentRow('partial', start);
    partialKey = key;
    els.transcript.append(partialRow);
  }
  partialRow.classList.remove('stale');
  const text = /** @type {HTMLElement} */ (partialRow.querySelector('.text'));
  const stableEl = document.createElement('span');
  stableEl.className = 'stable';
  stableEl.textContent = stable;
  const unstableEl = document.createElement('span');
  unstableEl.className = 'unstable';
  unstableEl.textContent = unstable;
  text.replaceChildren(stableEl, stable && unstable ? ' ' : '', unstableEl);
  scrollToEnd();
}

function clearPartial() {
  partialRow?.remove();
  partialRow = null;
  partialKey = '';
}

/** @param {Extract<import('./live-stream.js').LiveEvent, { type: 'final' }>} final */
function addFinal(final) {
  if (partialKey === final.key) clearPartial();
  const kept = transcript.add({ key: final.key, text: final.text, start: final.start, end: final.end, latencyMs: final.latencyMs, e2eMs: final.e2eMs ?? undefined });
  if (!kept) return;
  const row = segmentRow('final', final.start);
  row.dataset.key = final.key;
  row.dataset.start = final.start.toFixed(2);
  row.dataset.end = final.end.toFixed(2);
  /** @type {HTMLElement} */ (row.querySelector('.text')).textContent = final.text.trim();
  const latency = /** @type {HTMLElement} */ (row.querySelector('.latency'));
  latency.textContent = `${(final.latencyMs / 1000).toFixed(2)} s`;
  latency.classList.add(final.latencyMs < 1000 ? 'fast' : final.latencyMs < 2500 ? 'ok' : 'slow');
  latency.title =
    `Latency ${Math.round(final.latencyMs)} ms: from the server receiving the end of this speech to the final text ` +
    `(queue ${Math.round(final.queueMs)} ms, recognition ${Math.round(final.inferenceMs)} ms)` +
    (final.e2eMs !== null ? `. From speaking to seeing it here: ${Math.round(final.e2eMs)} ms.` : '.');
  if (partialRow) els.transcript.insertBefore(row, partialRow);
  else els.transcript.append(row);
  updateEmpty();
  scrollToEnd();
}

/**
 * @param {'final' | 'partial'} kind
 * @param {number} start
 */
function segmentRow(kind, start) {
  const row = document.createElement('div');
  row.className = `segment ${kind}`;
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = clockTime(start);
  const text = document.createElement('p');
  text.className = 'text';
  text.dir = 'auto';
  const latency = document.createElement('span');
  latency.className = 'latency';
  if (kind === 'partial') latency.textContent = '…';
  row.append(time, text, latency);
  updateEmpty(true);
  return row;
}

/** @param {boolean} [hasContent] */
function updateEmpty(hasContent = false) {
  const empty = !hasContent && transcript.isEmpty && !partialRow;
  els.empty.hidden = !empty;
  for (const button of els.actions) button.disabled = transcript.isEmpty;
  els.clear.disabled = transcript.isEmpty;
}

function scrollToEnd() {
  const box = els.transcript;
  // Follow the end unless the reader has scrolled up to read.
  const nearEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  if (nearEnd) box.scrollTop = box.scrollHeight;
}

els.clear.addEventListener('click', () => {
  transcript.clear();
  for (const row of [...els.transcript.querySelectorAll('.segment.final')]) row.remove();
  updateEmpty();
});

// ── status, alerts, level

/**
 * @param {string} state
 * @param {string} text
 */
function setStatus(state, text) {
  els.status.dataset.state = state;
  els.statusText.textContent = text;
}

/**
 * @param {string} message
 * @param {string} [code]
 * @param {'error' | 'warning'} [level]
 * @param {string} [topic]  an alert that a later event may clear
 */
function showAlert(message, code, level = 'error', topic = '') {
  els.alert.hidden = false;
  els.alert.dataset.level = level;
  els.alert.dataset.topic = topic;
  els.alertText.textContent = code ? `${message} (${code})` : message;
}

/** @param {string} [topic] only an alert about this */
function hideAlert(topic) {
  if (topic !== undefined && els.alert.dataset.topic !== topic) return;
  els.alert.hidden = true;
}
$('alert-close').addEventListener('click', () => hideAlert());

/**
 * @param {number} rms
 * @param {number} peak
 */
function showLevel(rms, peak) {
  // -60 dBFS … 0 dBFS onto 0 … 100 %.
  const db = 20 * Math.log10(Math.max(rms, 1e-6));
  const width = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
  els.level.style.width = `${width.toFixed(1)}%`;
  els.level.classList.toggle('clipping', peak >= 0.99);
}

// ── copy and download

/** @param {string} kind */
function exportText(kind) {
  return kind.endsWith('vtt') ? transcript.toVtt() : transcript.toText();
}

for (const button of els.actions) {
  button.addEventListener('click', async () => {
    const kind = button.dataset.export ?? 'copy-text';
    const text = exportText(kind);
    if (kind.startsWith('copy')) {
      const ok = await copy(text);
      toast(ok ? (kind === 'copy-vtt' ? 'WebVTT copied' : 'Text copied') : 'Copying was blocked by the browser; use Download instead.');
    } else {
      const vtt = kind === 'download-vtt';
      download(text, `kol-transcript-${stamp()}.${vtt ? 'vtt' : 'txt'}`, vtt ? 'text/vtt' : 'text/plain');
    }
  });
}

/** @param {string} text */
async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Older browsers, or a page that is not a secure context.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

/**
 * @param {string} text
 * @param {string} name
 * @param {string} type
 */
function download(text, name, type) {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function stamp() {
  const d = new Date();
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let toastTimer;
/** @param {string} text */
function toast(text) {
  els.toast.textContent = text;
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    els.toast.hidden = true;
  }, 2200);
}

window.addEventListener('beforeunload', (event) => {
  if (phase === 'running') event.preventDefault();
});

setPhase('idle');
setStatus('idle', 'Ready');
updateEmpty();
