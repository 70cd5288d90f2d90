/**
 * Errors Fastify raises before any route or hook runs (a path parameter over the router's length cap,
 * a malformed percent-encoding): OpenAI-shaped like every other answer, with the request id, instead
 * of Fastify's own {error, code, message, statusCode} body. The path is not echoed back.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { gatewayErrors } from "../errors.ts";

const DETAILS: Record<string, string> = {
  FST_ERR_MAX_PARAM_LENGTH: "A path parameter is too long (an id of this length cannot exist).",
  FST_ERR_BAD_URL: "The URL is not valid (malformed percent-encoding).",
};

export function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.header("x-request-id", request.id);
  const status = error.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err: error }, "framework error");
    reply.code(500).send(gatewayErrors.create("server_error", { requestId: request.id }).toOpenAi());
    return;
  }
  const detail = DETAILS[error.code] ?? "The request could not be routed.";
  reply.code(status).send(gatewayErrors.create("invalid_request_error", { detail }).toOpenAi());
}
