/**
 * Caption rooms. A session whose configuration names a `room` publishes its partials and finals
 * there; any number of read-only viewers watch the room (the overlay page, or a plain WebSocket at
 * `/v1/captions?room=NAME`, see viewers.ts). A viewer that joins late gets the room's last
 * few finals; every viewer hears when publishers come and go. PROTOCOL.md, "Caption rooms",
 * documents the messages.
 *
 * Everything a gateway needs is behind `CaptionRooms`, so that a shared implementation can replace
 * the in-process `MemoryRooms` for fan-out across several gateways: a pub/sub channel per room for
 * the live messages, a capped list per room for the backlog, and a set of publishers with expiry
 * for the count. Methods that such an implementation must do remotely return nothing the caller
 * waits for: the snapshot of a room reaches a viewer through its listener, like everything else.
 */
import { ROOM_NAME } from '../session-config.js';
import type { SessionEvent } from '../session.js';

/** A final as viewers see it: the text and its times, without the word timings and latency figures. */
export type CaptionFinal = {
  type: 'final';
  /** The publishing session; partials and finals of one session share it. */
  session_id: string;
  segment_id: number;
  /** Empty when the segment turned out not to be speech: a viewer drops that segment's partial. */
  text: string;
  /** Seconds on the publishing session's audio timeline. */
  start: number;
  end: number;
  /** When the server produced it (Unix epoch, ms), so a late viewer can tell how old a backlog line is. */
  at: number;
};

export type CaptionPartial = {
  type: 'partial';
  session_id: string;
  segment_id: number;
  text: string;
  /** The leading words that have stopped changing, and the rest. */
  stable: string;
  unstable: string;
  start: number;
};

/**
 * The room's state: the first message every viewer gets (with `backlog`, oldest first), and again,
 * without a backlog, each time a publisher joins or leaves (`event`, `session_id`).
 */
export type RoomStatus = {
  type: 'room';
  room: string;
  /** Sessions publishing to the room now; 0 means nobody is captioning it at the moment. */
  publishers: number;
  backlog?: CaptionFinal[];
  event?: 'publisher_joined' | 'publisher_left';
  session_id?: string;
};

export type CaptionMessage = RoomStatus | CaptionPartial | CaptionFinal;

export type CaptionListener = (message: CaptionMessage) => void;

export interface RoomPublisher {
  readonly room: string;
  /** Passes on a session's partial or final; every other event is ignored. */
  publish(event: SessionEvent): void;
  /** Idempotent. */
  leave(): void;
}

export interface RoomSubscription {
  /** Idempotent. */
  close(): void;
}

export interface RoomStats {
  rooms: number;
  publishers: number;
  subscribers: number;
}

export interface CaptionRooms {
  /** Registers a session as a publisher of a room (viewers hear `publisher_joined`). */
  join(room: string, sessionId: string): RoomPublisher;
  /** Starts delivering a room's messages to a listener, beginning with its status and backlog. */
  subscribe(room: string, listener: CaptionListener): RoomSubscription;
  stats(): RoomStats;
  /** Drops every room and subscription. */
  close(): void;
}

/** Turns a session's partial or final into its caption form; null for every other event. */
export function toCaption(event: SessionEvent, sessionId: string, now = Date.now()): CaptionPartial | CaptionFinal | null {
  if (event.type === 'partial') {
    return { type: 'partial', session_id: sessionId, segment_id: event.segmentId, text: event.text, stable: event.stable, unstable: event.unstable, start: event.start };
  }
  if (event.type === 'final') {
    return { type: 'final', session_id: sessionId, segment_id: event.segmentId, text: event.text, start: event.start, end: event.end, at: now };
  }
  return null;
}

export interface MemoryRoomsOptions {
  /** Finals kept per room for viewers who join late. */
  backlog?: number;
  /** A room with no publishers and no viewers is forgotten (backlog included) after this long. */
  idleTtlMs?: number;
  /** Called when a listener throws (the others still get the message). */
  onListenerError?: (err: unknown) => void;
}

interface Room {
  name: string;
  publishers: Set<string>;
  listeners: Set<CaptionListener>;
  backlog: CaptionFinal[];
  /** When the room last lost its last publisher or viewer. */
  idleSince: number;
}

export const DEFAULT_BACKLOG = 5;
const DEFAULT_IDLE_TTL_MS = 15 * 60_000;

/** The in-process implementation: one gateway, rooms in memory. */
export class MemoryRooms implements CaptionRooms {
  private readonly rooms = new Map<string, Room>();
  private readonly backlogSize: number;
  private readonly idleTtlMs: number;
  private readonly onListenerError: (err: unknown) => void;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: MemoryRoomsOptions = {}) {
    this.backlogSize = options.backlog ?? DEFAULT_BACKLOG;
    this.idleTtlMs = options.idleTtlMs ?? DEFAULT_IDLE_TTL_MS;
    this.onListenerError = options.onListenerError ?? (() => {});
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(this.idleTtlMs, 60_000)));
    this.sweeper.unref();
  }

  join(name: string, sessionId: string): RoomPublisher {
    checkRoomName(name);
    const room = this.room(name);
    room.publishers.add(sessionId);
    this.broadcast(room, { type: 'room', room: name, publishers: room.publishers.size, event: 'publisher_joined', session_id: sessionId });
    let left = false;
    return {
      room: name,
      publish: (message) => {
        if (left) return;
        const caption = toCaption(message, sessionId);
        if (!caption) return;
        const current = this.rooms.get(name);
        if (!current) return;
        if (caption.type === 'final' && caption.text.trim() !== '') {
          current.backlog.push(caption);
          if (current.backlog.length > this.backlogSize) current.backlog.splice(0, current.backlog.length - this.backlogSize);
        }
        this.broadcast(current, caption);
      },
      leave: () => {
        if (left) return;
        left = true;
        const current = this.rooms.get(name);
        if (!current || !current.publishers.delete(sessionId)) return;
        this.broadcast(current, { type: 'room', room: name, publishers: current.publishers.size, event: 'publisher_left', session_id: sessionId });
        this.markIdle(current);
      },
    };
  }

  subscribe(name: string, listener: CaptionListener): RoomSubscription {
    checkRoomName(name);
    const room = this.room(name);
    room.listeners.add(listener);
    this.deliver(listener, { type: 'room', room: name, publishers: room.publishers.size, backlog: [...room.backlog] });
    let closed = false;
    return {
      close: () => {
        if (closed) return;
        closed = true;
        const current = this.rooms.get(name);
        if (!current) return;
        current.listeners.delete(listener);
        this.markIdle(current);
      },
    };
  }

  stats(): RoomStats {
    let publishers = 0;
    let subscribers = 0;
    for (const room of this.rooms.values()) {
      publishers += room.publishers.size;
      subscribers += room.listeners.size;
    }
    return { rooms: this.rooms.size, publishers, subscribers };
  }

  close(): void {
    clearInterval(this.sweeper);
    this.rooms.clear();
  }

  /** Forgets idle rooms whose time is up. Public for tests. */
  sweep(now = Date.now()): void {
    for (const [name, room] of this.rooms) {
      if (room.publishers.size === 0 && room.listeners.size === 0 && now - room.idleSince >= this.idleTtlMs) this.rooms.delete(name);
    }
  }

  private room(name: string): Room {
    let room = this.rooms.get(name);
    if (!room) {
      room = { name, publishers: new Set(), listeners: new Set(), backlog: [], idleSince: Date.now() };
      this.rooms.set(name, room);
    }
    return room;
  }

  private markIdle(room: Room): void {
    if (room.publishers.size > 0 || room.listeners.size > 0) return;
    room.idleSince = Date.now();
    // A room that never held a final has nothing worth keeping.
    if (room.backlog.length === 0) this.rooms.delete(room.name);
  }

  private broadcast(room: Room, message: CaptionMessage): void {
    for (const listener of [...room.listeners]) this.deliver(listener, message);
  }

  private deliver(listener: CaptionListener, message: CaptionMessage): void {
    try {
      listener(message);
    } catch (err) {
      this.onListenerError(err);
    }
  }
}

export function checkRoomName(name: string): void {
  if (!ROOM_NAME.test(name)) throw new TypeError(`Invalid room name ${JSON.stringify(name)}: use 1 to 64 letters, digits, ".", "_" or "-".`);
}

/** What a gateway wraps around a session's `send`: the tap sees every event and publishes to the room. */
export interface SessionTap {
  send: (event: SessionEvent) => void;
  /** The session's connection closed. */
  close: () => void;
}

/**
 * Wraps a session's events so that they also reach its caption room. The room comes
 * from the session's configuration, which every `ready` event carries: the session joins its room
 * when it is announced, moves if a `config` message names another, and leaves at `closed` or when
 * the connection goes. Works for every dialect, since it sits below their rendering. A failure
 * in the rooms never reaches the session.
 */
export function sessionRoomTap(rooms: CaptionRooms, sessionId: string, send: (event: SessionEvent) => void, onError: (err: unknown) => void = () => {}): SessionTap {
  let publisher: RoomPublisher | null = null;
  const leave = () => {
    publisher?.leave();
    publisher = null;
  };
  return {
    send(message) {
      send(message);
      try {
        switch (message.type) {
          case 'ready': {
            const room = message.config.room;
            if (publisher?.room === room) break;
            leave();
            if (room) publisher = rooms.join(room, sessionId);
            break;
          }
          case 'partial':
          case 'final':
            publisher?.publish(message);
            break;
          case 'closed':
            leave();
            break;
          default:
            break;
        }
      } catch (err) {
        onError(err);
      }
    },
    close() {
      try {
        leave();
      } catch (err) {
        onError(err);
      }
    },
  };
}
