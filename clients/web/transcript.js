// @ts-check
/**
 * The transcript as the page keeps it, and its exports: plain text (one segment a line) and
 * WebVTT (one cue per segment, timed on the recording's own timeline). No DOM here, so the Node
 * tests use the very same code.
 */

/**
 * @typedef {object} Segment
 * @property {string} key      unique within the page (connection serial + segment id)
 * @property {string} text
 * @property {number} start    seconds since the recording started
 * @property {number} end
 * @property {number} [latencyMs]  server-measured: last audio of the speech received → final sent
 * @property {number} [e2eMs]      page-measured: that audio captured → final received
 */

/**
 * 83.5 → "00:01:23.500" (WebVTT wants hours, minutes, seconds and milliseconds).
 * @param {number} seconds
 */
export function vttTimestamp(seconds) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const rest = ms % 1000;
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(rest).padStart(3, '0')}`;
}

/**
 * 83.5 → "1:23", for the time shown beside each segment.
 * @param {number} seconds
 */
export function clockTime(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}` : `${m}:${String(s).padStart(2, '0')}`;
}

/**
 * Cue text may not hold "-->" or a blank line, and &, < and > are markup.
 * @param {string} text
 */
function vttText(text) {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/-->/g, '--&gt;')
    .trim();
}

/**
 * @param {Segment[]} segments
 * @returns {string}
 */
export function toPlainText(segments) {
  const lines = segments.map((s) => s.text.trim()).filter((t) => t !== '');
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * @param {Segment[]} segments
 * @returns {string}
 */
export function toWebVtt(segments) {
  let out = 'WEBVTT\n';
  let n = 0;
  for (const segment of segments) {
    const text = vttText(segment.text);
    if (text === '') continue;
    n++;
    // A cue must end after it starts.
    const end = Math.max(segment.end, segment.start + 0.1);
    out += `\n${n}\n${vttTimestamp(segment.start)} --> ${vttTimestamp(end)}\n${text}\n`;
  }
  return out;
}

/** The finals received so far, in order. */
export class Transcript {
  constructor() {
    /** @type {Segment[]} */
    this.segments = [];
  }

  /**
   * Adds a final; an empty one (no speech after all) is not kept.
   * @param {Segment} segment
   * @returns {boolean} whether it was kept
   */
  add(segment) {
    if (segment.text.trim() === '') return false;
    this.segments.push(segment);
    return true;
  }

  clear() {
    this.segments = [];
  }

  get isEmpty() {
    return this.segments.length === 0;
  }

  toText() {
    return toPlainText(this.segments);
  }

  toVtt() {
    return toWebVtt(this.segments);
  }
}
