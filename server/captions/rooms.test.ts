import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyConfig, ROOM_NAME, type SessionConfig } from '../session-config.js';
import type { SessionEvent } from '../session.js';
import { MemoryRooms, sessionRoomTap, type CaptionMessage } from './rooms.js';

const partial = (segment: number, text: string): SessionEvent => ({ type: 'partial', segmentId: segment, text, stable: text.split(' ')[0], unstable: text.split(' ').slice(1).join(' '), start: 0 });
const final = (segment: number, text: string): SessionEvent => ({
  type: 'final',
  segmentId: segment,
  text,
  start: segment,
  end: segment + 1,
  words: [],
  reason: 'silence',
  latencyMs: 500,
  queueMs: 1,
  inferenceMs: 400,
});

function viewer(rooms: MemoryRooms, room: string) {
  const messages: CaptionMessage[] = [];
  const subscription = rooms.subscribe(room, (m) => messages.push(m));
  return { messages, subscription };
}

test('a viewer gets the room status first, then partials and finals as they happen', () => {
  const rooms = new MemoryRooms();
  const v = viewer(rooms, 'studio');
  assert.deepEqual(v.messages, [{ type: 'room', room: 'studio', publishers: 0, backlog: [] }]);
  const publisher = rooms.join('studio', 's1');
  publisher.publish(partial(1, 'שלום עולם'));
  publisher.publish(final(1, 'שלום עולם.'));
  publisher.publish({ type: 'speech_start', segmentId: 2, start: 3 }); // not a caption
  assert.deepEqual(
    v.messages.slice(1).map((m) => m.type),
    ['room', 'partial', 'final'],
  );
  assert.deepEqual(v.messages[1], { type: 'room', room: 'studio', publishers: 1, event: 'publisher_joined', session_id: 's1' });
  assert.deepEqual(v.messages[2], { type: 'partial', session_id: 's1', segment_id: 1, text: 'שלום עולם', stable: 'שלום', unstable: 'עולם', start: 0 });
  const f = v.messages[3];
  assert.equal(f.type, 'final');
  assert.equal(f.type === 'final' && f.text, 'שלום עולם.');
  assert.ok(f.type === 'final' && Math.abs(f.at - Date.now()) < 5000);
  assert.ok(!('words' in f), 'viewers get no word timings');
  rooms.close();
});

test('a late viewer gets the last finals (not empty ones), oldest first, up to the backlog size', () => {
  const rooms = new MemoryRooms({ backlog: 3 });
  const publisher = rooms.join('r', 's1');
  for (let i = 1; i <= 5; i++) publisher.publish(final(i, `final ${i}`));
  publisher.publish(final(6, ''));
  const late = viewer(rooms, 'r');
  const first = late.messages[0];
  assert.equal(first.type, 'room');
  assert.equal(first.type === 'room' && first.publishers, 1);
  assert.deepEqual(first.type === 'room' && first.backlog?.map((f) => f.text), ['final 3', 'final 4', 'final 5']);
  rooms.close();
});

test('viewers hear publishers join and leave; leaving twice counts once; rooms are separate', () => {
  const rooms = new MemoryRooms();
  const v = viewer(rooms, 'a');
  const other = viewer(rooms, 'b');
  const p1 = rooms.join('a', 's1');
  const p2 = rooms.join('a', 's2');
  p1.leave();
  p1.leave();
  p1.publish(final(1, 'after leaving')); // ignored
  p2.leave();
  const statuses = v.messages.filter((m) => m.type === 'room').map((m) => (m.type === 'room' ? [m.publishers, m.event ?? 'joined'] : []));
  assert.deepEqual(statuses, [
    [0, 'joined'],
    [1, 'publisher_joined'],
    [2, 'publisher_joined'],
    [1, 'publisher_left'],
    [0, 'publisher_left'],
  ]);
  assert.equal(other.messages.length, 1, 'room b heard nothing of room a');
  assert.deepEqual(rooms.stats(), { rooms: 2, publishers: 0, subscribers: 2 });
  rooms.close();
});

test('a closed subscription hears nothing more; a viewer that throws does not stop the others', () => {
  const errors: unknown[] = [];
  const rooms = new MemoryRooms({ onListenerError: (err) => errors.push(err) });
  rooms.subscribe('r', (m) => {
    if (m.type === 'final') throw new Error('broken viewer');
  });
  const good = viewer(rooms, 'r');
  const gone = viewer(rooms, 'r');
  gone.subscription.close();
  gone.subscription.close();
  const publisher = rooms.join('r', 's1');
  publisher.publish(final(1, 'hello'));
  assert.equal(good.messages.filter((m) => m.type === 'final').length, 1);
  assert.equal(gone.messages.length, 1);
  assert.equal(errors.length, 1);
  rooms.close();
});

test('idle rooms are forgotten: at once without a backlog, after the idle time with one', () => {
  const rooms = new MemoryRooms({ idleTtlMs: 60_000 });
  const v = viewer(rooms, 'empty');
  v.subscription.close();
  assert.equal(rooms.stats().rooms, 0);

  const publisher = rooms.join('kept', 's1');
  publisher.publish(final(1, 'worth keeping'));
  publisher.leave();
  rooms.sweep(Date.now() + 30_000);
  assert.equal(rooms.stats().rooms, 1, 'kept within the idle time, for late viewers');
  rooms.sweep(Date.now() + 61_000);
  assert.equal(rooms.stats().rooms, 0);
  rooms.close();
});

test('room names follow the same rule as the session configuration', () => {
  const rooms = new MemoryRooms();
  const base: SessionConfig = { sample_rate: 16000, encoding: 'pcm_s16le', channels: 1, language: 'he', partials: true, endpoint_ms: 500, prompt: '', room: null };
  for (const name of ['studio', 'a', 'room-1_x.y', 'x'.repeat(64), '', 'x'.repeat(65), 'with space', 'שלום', 'a/b', '../x']) {
    let configOk = true;
    try {
      applyConfig(base, { room: name });
    } catch {
      configOk = false;
    }
    assert.equal(ROOM_NAME.test(name), configOk, `"${name}"`);
    if (configOk) rooms.subscribe(name, () => {}).close();
    else assert.throws(() => rooms.join(name, 's'), /Invalid room name/);
  }
  rooms.close();
});

test('a session tap joins the room its ready message names, publishes, moves, and leaves at closed or close', () => {
  const rooms = new MemoryRooms();
  const a = viewer(rooms, 'a');
  const b = viewer(rooms, 'b');
  const sent: SessionEvent[] = [];
  const tap = sessionRoomTap(rooms, 'sess', (m) => sent.push(m));
  const config: SessionConfig = { sample_rate: 16000, encoding: 'pcm_s16le', channels: 1, language: 'he', partials: true, endpoint_ms: 500, prompt: '', room: null };
  const ready = (room: string | null): SessionEvent => ({ type: 'ready', sessionId: 'sess', config: { ...config, room } });

  tap.send(ready(null));
  tap.send(ready('a'));
  tap.send(partial(1, 'one two'));
  tap.send(ready('b')); // a config message moved it
  tap.send(final(1, 'one two three'));
  tap.send({ type: 'closed', reason: 'eof', segments: 1 });
  tap.send(final(2, 'after closed')); // nowhere
  tap.close();

  assert.equal(sent.length, 7, 'the client gets every message regardless');
  const types = (messages: CaptionMessage[]) => messages.map((m) => (m.type === 'room' ? `room:${m.publishers}` : m.type));
  assert.deepEqual(types(a.messages), ['room:0', 'room:1', 'partial', 'room:0']);
  assert.deepEqual(types(b.messages), ['room:0', 'room:1', 'final', 'room:0']);
  rooms.close();
});

test('a tap never lets a failing room break the session', () => {
  const broken = {
    join: () => {
      throw new Error('redis down');
    },
    subscribe: () => ({ close() {} }),
    stats: () => ({ rooms: 0, publishers: 0, subscribers: 0 }),
    close() {},
  };
  const errors: unknown[] = [];
  const sent: SessionEvent[] = [];
  const tap = sessionRoomTap(broken, 's', (m) => sent.push(m), (err) => errors.push(err));
  tap.send({ type: 'ready', sessionId: 's', config: { sample_rate: 16000, encoding: 'pcm_s16le', channels: 1, language: 'he', partials: true, endpoint_ms: 500, prompt: '', room: 'x' } });
  tap.send(final(1, 'still delivered'));
  assert.equal(sent.length, 2);
  assert.equal(errors.length, 1);
});
