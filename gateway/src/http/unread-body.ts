/**
 * Answering a request before its body has all arrived (an upload refused at its first bad line): the
 * rest of the body is not read. Left open, the connection would wait for that body forever and a
 * client that reads only after sending would sit blocked writing; marked `connection: close`, Node
 * closes it once the answer is written, so every client gets the answer and then an error on its
 * write, never a hang. A client that reads while it sends (fetch, the openai SDKs) stops at the answer.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

export function closeAfterReply(request: FastifyRequest, reply: FastifyReply): void {
  if (!request.raw.complete) reply.header("connection", "close");
}
