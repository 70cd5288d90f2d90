/**
 * A body over the JSON body limit: Fastify refuses it from its content-length (or once the bytes read
 * pass the limit) before any route runs. Its own answer closed the connection while the client was
 * still sending, so the openai SDK saw EPIPE (APIConnectionError) and retried the same body. The answer
 * is OpenAI-shaped, says not to retry, and is followed by the same half-close as a refused upload.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { gatewayErrors } from "../errors.ts";
import { closeAfterReply } from "./unread-body.ts";

export function isBodyTooLarge(error: unknown): boolean {
  return (error as FastifyError).code === "FST_ERR_CTP_BODY_TOO_LARGE";
}

export function answerBodyTooLarge(request: FastifyRequest, reply: FastifyReply, limit: number): FastifyReply {
  // Fastify set connection: close, with which Node destroys the socket as soon as the answer is written:
  // the client's next bytes then meet a reset. closeAfterReply half-closes instead and closes later.
  reply.removeHeader("connection");
  closeAfterReply(request, reply);
  return reply.code(413).header("x-should-retry", "false").send(gatewayErrors.create("request_too_large", { limit }).toOpenAi());
}
