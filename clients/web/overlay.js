// @ts-check
/**
 * The caption overlay (`/overlay?room=NAME`): follows a caption room over /v1/captions and shows
 * its last lines, large and outlined on a transparent page, for an OBS browser source. The partial
 * is replaced in place as it grows and becomes the final; finished lines fade after a while.
 * overlay.html lists the URL parameters.
 */
import { ROOM_NAME, socketUrl } from './urls.js';

const params = new URLSearchParams(location.search);
const MAX_LINES_KEPT = 12;
const RETRY_MS = [1000, 2000, 5000, 10000];

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const stage = $('stage');
const captions = $('captions');
const statusEl = $('status');

// ── options

/**
 * @param {string | null} raw
 * @param {number} min
 * @param {number} max
 * @param {number} fallback
 */
function number(raw, min, max, fallback) {
  const value = raw === null || raw.trim() === '' ? NaN : Number(raw);
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : fallback;
}

/**
 * A CSS colour from a parameter; hex may come without its "#" (which URLs make awkward).
 * @param {string | null} raw
 * @param {string} fallback
 */
function colour(raw, fallback) {
  if (!raw) return fallback;
  const value = /^[\da-f]{3,8}$/i.test(raw) ? `#${raw}` : raw;
  return CSS.supports('color', value) ? value : fallback;
}

/** @param {string | null} raw @param {boolean} fallback */
function flag(raw, fallback) {
  if (raw === null) return fallback;
  return !['0', 'false', 'no', 'off'].includes(raw.toLowerCase());
}

const options = {
  room: params.get('room') ?? '',
  size: number(params.get('size'), 10, 400, 48),
  lines: Math.round(number(params.get('lines'), 1, 6, 2)),
  color: colour(params.get('color'), '#ffffff'),
  outline: params.get('outline') === 'none' ? 'transparent' : colour(params.get('outline'), '#000000'),
  box: colour(params.get('box') ?? params.get('bg'), 'transparent'),
  position: ['top', 'middle', 'bottom'].includes(params.get('position') ?? '') ? /** @type {string} */ (params.get('position')) : 'bottom',
  align: ['start', 'end', 'left', 'right', 'center'].includes(params.get('align') ?? '') ? /** @type {string} */ (params.get('align')) : 'center',
  font: (params.get('font') ?? '').replace(/[^\p{L}\p{N} ,'"-]/gu, '').trim(),
  weight: Math.round(number(params.get('weight'), 100, 900, 700) / 100) * 100,
  fade: number(params.get('fade'), 0, 3600, 8),
  partials: flag(params.get('partials'), true),
  status: flag(params.get('status'), true),
};

const root = document.documentElement.style;
root.setProperty('--size', `${options.size}px`);
root.setProperty('--lines', String(options.lines));
root.setProperty('--line-px', `${Math.round(options.size * 1.3)}px`);
root.setProperty('--color', options.color);
root.setProperty('--outline', options.outline);
root.setProperty('--outline-width', `${Math.max(1.5, options.size * 0.06).toFixed(1)}px`);
root.setProperty('--box', options.box);
root.setProperty('--weight', String(options.weight));
if (options.font) root.setProperty('--font', `${options.font}, 'Noto Sans Hebrew', Arial, 'DejaVu Sans', sans-serif`);
stage.dataset.position = options.position;
if (options.align === 'left' || options.align === 'right') captions.style.textAlign = options.align;
else captions.dataset.align = options.align;

// ── the lines on screen

/**
 * @typedef {{ el: HTMLElement, kind: 'partial' | 'final', sessionId: string, timer?: ReturnType<typeof setTimeout> }} Line
 * @type {Map<string, Line>} by "session:segment", in the order shown
 */
const lines = new Map();
let publishers = 0;
/** @type {'connecting' | 'open' | 'reconnecting' | 'refused'} */
let connection = 'connecting';
let refusal = '';

/**
 * @param {string} key
 * @param {string} sessionId
 * @param {'partial' | 'final'} kind
 */
function lineFor(key, sessionId, kind) {
  let line = lines.get(key);
  if (!line) {
    const el = document.createElement('div');
    el.className = 'line';
    el.dir = 'auto';
    el.append(document.createElement('span'));
    line = { el, kind, sessionId };
    lines.set(key, line);
    captions.append(el);
    prune();
  }
  line.kind = kind;
  line.el.classList.toggle('partial', kind === 'partial');
  line.el.classList.remove('faded');
  return line;
}

/**
 * @param {Line} line
 * @param {string} stable
 * @param {string} [unstable]
 */
function setText(line, stable, unstable = '') {
  const span = /** @type {HTMLElement} */ (line.el.firstElementChild);
  if (!unstable) {
    span.textContent = stable;
    return;
  }
  const tail = document.createElement('span');
  tail.className = 'unstable';
  tail.textContent = unstable;
  span.replaceChildren(stable ? `${stable} ` : '', tail);
}

/** @param {string} key @param {Line} line */
function scheduleFade(key, line) {
  clearTimeout(line.timer);
  if (options.fade <= 0) return;
  line.timer = setTimeout(() => {
    line.el.classList.add('faded');
    line.timer = setTimeout(() => remove(key), 1500);
  }, options.fade * 1000);
}

/** @param {string} key */
function remove(key) {
  const line = lines.get(key);
  if (!line) return;
  clearTimeout(line.timer);
  line.el.remove();
  lines.delete(key);
  renderStatus();
}

/** Only the last few lines are kept; the rest have scrolled out of view anyway. */
function prune() {
  while (lines.size > MAX_LINES_KEPT) {
    const oldest = lines.keys().next().value;
    if (oldest === undefined) break;
    remove(oldest);
  }
}

/** @param {any} message */
function onPartial(message) {
  if (!options.partials) return;
  const key = `${message.session_id}:${message.segment_id}`;
  const existing = lines.get(key);
  if (existing?.kind === 'final') return;
  const line = lineFor(key, message.session_id, 'partial');
  setText(line, message.stable, message.unstable);
  scheduleFade(key, line);
  renderStatus();
}

/** @param {any} message */
function onFinal(message) {
  const key = `${message.session_id}:${message.segment_id}`;
  const text = String(message.text ?? '').trim();
  if (text === '') {
    remove(key); // not speech after all: its partial goes
    return;
  }
  const line = lineFor(key, message.session_id, 'final');
  setText(line, text);
  scheduleFade(key, line);
  renderStatus();
}

/** @param {any} message */
function onRoom(message) {
  publishers = Number(message.publishers) || 0;
  if (Array.isArray(message.backlog)) {
    // Joining (or rejoining): the room's last finals, oldest first.
    for (const final of message.backlog) if (!lines.has(`${final.session_id}:${final.segment_id}`)) onFinal(final);
  }
  if (message.event === 'publisher_left') {
    for (const [key, line] of lines) if (line.kind === 'partial' && line.sessionId === message.session_id) remove(key);
  }
  renderStatus();
}

/** Lines that have scrolled out of the top are hidden, so that not even their outline shows. */
function hideScrolledOut() {
  const top = captions.getBoundingClientRect().top;
  for (const line of lines.values()) line.el.style.visibility = line.el.getBoundingClientRect().bottom <= top + 1 ? 'hidden' : '';
}

function renderStatus() {
  hideScrolledOut();
  let text = '';
  const room = `“${options.room}”`;
  if (connection === 'refused') text = refusal;
  else if (connection === 'connecting') text = `Connecting to caption room ${room}…`;
  else if (connection === 'reconnecting' && failedAttempts >= 2) text = `Captions: cannot reach the server (if it needs an API key, add &token=KEY to this address). Retrying…`;
  else if (connection === 'reconnecting') text = `Captions: connection lost, reconnecting…`;
  else if (publishers === 0) text = `No one is publishing to caption room ${room} now.`;
  const show = text !== '' && (options.status || connection === 'refused');
  statusEl.hidden = !show;
  statusEl.textContent = text;
  document.documentElement.dataset.connection = connection;
  document.documentElement.dataset.publishers = String(publishers);
}

// ── the connection

let attempt = 0;
/** Connections in a row that never opened. */
let failedAttempts = 0;

function connect() {
  const ws = new WebSocket(socketUrl('v1/captions', { room: options.room }));
  let opened = false;
  ws.onopen = () => {
    opened = true;
    attempt = 0;
    failedAttempts = 0;
    connection = 'open';
  };
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (message.type) {
      case 'room':
        onRoom(message);
        break;
      case 'partial':
        onPartial(message);
        break;
      case 'final':
        onFinal(message);
        break;
      case 'error':
        if (message.fatal) {
          connection = 'refused';
          refusal = `Captions: ${message.message}`;
        }
        break;
    }
    renderStatus();
  };
  ws.onclose = () => {
    if (connection === 'refused') return renderStatus();
    if (!opened) failedAttempts++;
    connection = opened || attempt > 0 ? 'reconnecting' : 'connecting';
    for (const [key, line] of lines) if (line.kind === 'partial') remove(key);
    renderStatus();
    const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
    attempt++;
    setTimeout(connect, delay);
  };
}

if (!ROOM_NAME.test(options.room)) {
  stage.hidden = true;
  $('help').hidden = false;
  if (options.room !== '') {
    const p = document.createElement('p');
    p.textContent = `"${options.room}" is not a room name: use letters, digits, ".", "_" or "-" (at most 64).`;
    p.style.color = '#c53030';
    $('help').insertBefore(p, $('help').children[1]);
  }
} else {
  document.title = `kol captions · ${options.room}`;
  renderStatus();
  connect();
}
