/**
 * Caption rooms shared by several gateways through Redis (`REDIS_URL`): a viewer on one gateway sees
 * a publisher on another. Per room:
 *   kol:room:NAME            pub/sub channel of caption messages (JSON)
 *   kol:room:NAME:backlog    list of the last finals, for viewers who join late
 *   kol:room:NAME:publishers sorted set of publishing sessions, scored by lease expiry (ms); a
 *                            gateway renews its publishers' leases, so a crashed gateway's
 *                            publishers drop out on their own
 * Same interface and messages as MemoryRooms (rooms.ts).
 */
import { Redis } from 'ioredis';
import { SILENT_LOGGER, type Logger } from '../../engine/log.js';
import {
  checkRoomName,
  DEFAULT_BACKLOG,
  toCaption,
  type CaptionListener,
  type CaptionMessage,
  type CaptionRooms,
  type RoomPublisher,
  type RoomStats,
  type RoomSubscription,
  type CaptionFinal,
} from './rooms.js';

const PREFIX = 'kol:room:';
const LEASE_MS = 30_000;
const RENEW_MS = 10_000;
/** Backlogs of rooms nobody publishes to expire after a day. */
const BACKLOG_TTL_S = 24 * 3600;

export interface RedisRoomsOptions {
  backlog?: number;
  /** Where connection and publish failures are reported; default: nowhere. */
  logger?: Logger;
}

export class RedisRooms implements CaptionRooms {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly backlogSize: number;
  /** Local viewers per room; the gateway subscribes to a room's channel while it has any. */
  private readonly listeners = new Map<string, Set<CaptionListener>>();
  /** This gateway's publishers (room → session ids), whose leases it renews. */
  private readonly publishers = new Map<string, Set<string>>();
  private readonly renewer: NodeJS.Timeout;
  private readonly logger: Logger;
  private readonly subReady: Promise<void>;

  constructor(url: string, options: RedisRoomsOptions = {}) {
    this.backlogSize = options.backlog ?? DEFAULT_BACKLOG;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.pub = new Redis(url, { maxRetriesPerRequest: 3, enableAutoPipelining: true });
    // The subscriber connection may only send (un)subscribe once subscribed: no pipelining there.
    this.sub = new Redis(url, { maxRetriesPerRequest: 3 });
    // SUBSCRIBE must not overtake the connection's own ready check (INFO), which is refused once
    // the connection is in subscriber mode.
    this.subReady = new Promise((resolve) => this.sub.once('ready', () => resolve()));
    for (const [name, client] of [['publish', this.pub], ['subscribe', this.sub]] as const) {
      client.on('error', (err: Error) => this.logger.warn({ connection: name, err: err.message }, 'redis connection error'));
    }
    this.sub.on('message', (channel: string, payload: string) => this.onMessage(channel, payload));
    this.renewer = setInterval(() => void this.renewLeases(), RENEW_MS);
    this.renewer.unref();
  }

  join(room: string, sessionId: string): RoomPublisher {
    checkRoomName(room);
    const local = this.publishers.get(room) ?? new Set<string>();
    local.add(sessionId);
    this.publishers.set(room, local);
    // One chain per publisher keeps its messages in order: joined, captions…, left.
    let chain = this.changePublishers(room, sessionId, 'publisher_joined');
    let left = false;
    return {
      room,
      publish: (message) => {
        if (left) return;
        const caption = toCaption(message, sessionId);
        if (!caption) return;
        chain = chain.then(() => this.publishCaption(room, caption));
      },
      leave: () => {
        if (left) return;
        left = true;
        this.publishers.get(room)?.delete(sessionId);
        if (this.publishers.get(room)?.size === 0) this.publishers.delete(room);
        chain = chain.then(() => this.changePublishers(room, sessionId, 'publisher_left'));
      },
    };
  }

  subscribe(room: string, listener: CaptionListener): RoomSubscription {
    checkRoomName(room);
    let set = this.listeners.get(room);
    const first = !set;
    if (!set) {
      set = new Set();
      this.listeners.set(room, set);
    }
    set.add(listener);
    void (async () => {
      try {
        // Subscribe before reading the backlog, so that no final falls between the two.
        if (first) {
          await this.subReady;
          await this.sub.subscribe(channel(room));
        }
        const [backlog, publishers] = await Promise.all([this.backlog(room), this.publisherCount(room)]);
        if (set.has(listener)) this.deliver(listener, { type: 'room', room, publishers, backlog });
      } catch (err) {
        this.logger.warn({ room, err: (err as Error).message }, 'redis: could not subscribe a caption viewer');
      }
    })();
    let closed = false;
    return {
      close: () => {
        if (closed) return;
        closed = true;
        set.delete(listener);
        if (set.size === 0 && this.listeners.get(room) === set) {
          this.listeners.delete(room);
          void this.sub.unsubscribe(channel(room)).catch(() => {});
        }
      },
    };
  }

  stats(): RoomStats {
    let publishers = 0;
    let subscribers = 0;
    for (const s of this.publishers.values()) publishers += s.size;
    for (const s of this.listeners.values()) subscribers += s.size;
    const rooms = new Set([...this.publishers.keys(), ...this.listeners.keys()]).size;
    return { rooms, publishers, subscribers };
  }

  close(): void {
    clearInterval(this.renewer);
    this.listeners.clear();
    this.publishers.clear();
    this.pub.disconnect();
    this.sub.disconnect();
  }

  private async publishCaption(room: string, caption: CaptionMessage): Promise<void> {
    try {
      const payload = JSON.stringify(caption);
      const multi = this.pub.multi();
      if (caption.type === 'final' && caption.text.trim() !== '') {
        multi.rpush(backlogKey(room), payload).ltrim(backlogKey(room), -this.backlogSize, -1).expire(backlogKey(room), BACKLOG_TTL_S);
      }
      multi.publish(channel(room), payload);
      await multi.exec();
    } catch (err) {
      this.logger.warn({ room, err: (err as Error).message }, 'redis: could not publish a caption');
    }
  }

  private async changePublishers(room: string, sessionId: string, event: 'publisher_joined' | 'publisher_left'): Promise<void> {
    try {
      if (event === 'publisher_joined') await this.pub.zadd(publishersKey(room), Date.now() + LEASE_MS, sessionId);
      else await this.pub.zrem(publishersKey(room), sessionId);
      const publishers = await this.publisherCount(room);
      await this.pub.publish(channel(room), JSON.stringify({ type: 'room', room, publishers, event, session_id: sessionId } satisfies CaptionMessage));
    } catch (err) {
      this.logger.warn({ room, err: (err as Error).message }, 'redis: could not update a room’s publishers');
    }
  }

  private async publisherCount(room: string): Promise<number> {
    await this.pub.zremrangebyscore(publishersKey(room), '-inf', Date.now());
    return this.pub.zcard(publishersKey(room));
  }

  private async backlog(room: string): Promise<CaptionFinal[]> {
    const items = await this.pub.lrange(backlogKey(room), 0, -1);
    return items.map((item) => JSON.parse(item) as CaptionFinal);
  }

  private async renewLeases(): Promise<void> {
    if (this.publishers.size === 0) return;
    try {
      const multi = this.pub.multi();
      const expiry = Date.now() + LEASE_MS;
      for (const [room, sessions] of this.publishers) for (const id of sessions) multi.zadd(publishersKey(room), expiry, id);
      await multi.exec();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'redis: could not renew publisher leases');
    }
  }

  private onMessage(channelName: string, payload: string): void {
    const room = channelName.slice(PREFIX.length);
    const set = this.listeners.get(room);
    if (!set) return;
    let message: CaptionMessage;
    try {
      message = JSON.parse(payload) as CaptionMessage;
    } catch {
      return;
    }
    for (const listener of [...set]) this.deliver(listener, message);
  }

  private deliver(listener: CaptionListener, message: CaptionMessage): void {
    try {
      listener(message);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'caption listener failed');
    }
  }
}

const channel = (room: string) => `${PREFIX}${room}`;
const backlogKey = (room: string) => `${PREFIX}${room}:backlog`;
const publishersKey = (room: string) => `${PREFIX}${room}:publishers`;
