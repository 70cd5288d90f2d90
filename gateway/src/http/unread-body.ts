/**
 * Answering a request before its body has all arrived (an upload refused at its first bad line): the
 * answer is sent, the rest of the body is never read, and the connection is closed the way clients can
 * read it. Closing at once while the client is still sending makes the kernel answer its next bytes
 * with a reset, which can destroy the answer before the client has read it; reading and dropping the
 * rest keeps fetch sending (it looks at the answer only once its write blocks: a drained 200 MB body
 * ended in EPIPE, not the 400). So after the answer the gateway half-closes (FIN: the answer is
 * complete), stops reading, and closes a while later. A client that reads while it sends (fetch, the
 * openai SDKs) takes the answer as soon as its write blocks and closes first; one that reads only
 * after sending is cut off when the wait ends.
 */
import type { IncomingMessage } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";

/** How long a refused body's sender is given to read the answer and close. */
const LINGER_MS = 5_000;

export function closeAfterReply(request: FastifyRequest, reply: FastifyReply): void {
  if (request.raw.complete) return;
  reply.raw.once("finish", () => linger(request.raw));
}

function linger(req: IncomingMessage): void {
  const socket = req.socket;
  if (socket.destroyed) return;
  // Whatever was parsing the body (busboy) is done with it; the rest stays unread.
  req.unpipe();
  req.pause();
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}
