import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 for download tests, with no internet involved. It serves `payload`
 * at /file and at /mirror/<any name> (Range requests answered 206), a different payload of the same
 * size at /wrong, a redirect chain to /file at /redirect, and never answers at /stall. Every request
 * is recorded.
 */
export interface FileServer {
  url: string;
  payload: Buffer;
  sha256: string;
  sha1: string;
  requests: { path: string; range: string | undefined }[];
  /** Cut the connection after this many body bytes, for the next `count` responses. */
  cutAfter(bytes: number, count?: number): void;
  /** Answer every request with the whole file (200), as a server without Range support does. */
  ignoreRanges(): void;
  close(): Promise<void>;
}

export async function startFileServer(size = 3 * 1024 * 1024 + 123): Promise<FileServer> {
  const payload = randomBytes(size);
  const wrong = Buffer.from(payload).fill(7, size >> 1);
  const requests: FileServer['requests'] = [];
  let cut: { bytes: number; count: number } | undefined;
  let rangesIgnored = false;

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push({ path: url, range: req.headers.range });
    if (url === '/redirect') return redirect(res, '/redirect-2');
    if (url === '/redirect-2') return redirect(res, `http://127.0.0.1:${port()}/file`);
    if (url === '/stall') return; // accept, never answer
    const body = url === '/file' || url.startsWith('/mirror/') ? payload : url === '/wrong' ? wrong : undefined;
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    const range = rangesIgnored ? undefined : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(range ? 206 : 200, {
      'content-length': body.length - start,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (cut && cut.count > 0) {
      cut.count--;
      res.write(body.subarray(start, start + cut.bytes), () => res.socket?.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const port = () => (server.address() as net.AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port()}`,
    payload,
    sha256: createHash('sha256').update(payload).digest('hex'),
    sha1: createHash('sha1').update(payload).digest('hex'),
    requests,
    cutAfter(bytes, count = 1) {
      cut = { bytes, count };
    },
    ignoreRanges() {
      rangesIgnored = true;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function redirect(res: http.ServerResponse, location: string): void {
  res.writeHead(302, { location }).end();
}

/** A port on 127.0.0.1 that nothing listens on: connecting to it is refused. */
export async function refusedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
