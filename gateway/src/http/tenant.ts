/**
 * The tenant of a request: who owns what it stores and may read it back (responses and their input
 * items, files, batches; R22). A key's project when its record names one (keys of a project share their
 * objects), else the key itself; "anonymous" with auth off; for a batch line, its batch's owner. Every
 * route that stores or reads a stored object asks this one function; the stores compare tenants and
 * answer "not found" to any other, so an id reveals nothing (no 403).
 */
import type { FastifyRequest } from "fastify";
import { ANONYMOUS_TENANT } from "../domain/api-keys.ts";
import { batchLineTenant } from "../domain/batches/batch-line-keys.ts";

export function tenantOf(request: FastifyRequest): string {
  const key = request.apiKey;
  if (!key) return ANONYMOUS_TENANT;
  const line = batchLineTenant(key);
  if (line !== undefined) return line;
  // Prefixed so that a project never shares a name with a key id (no key id starts with 'project:').
  return key.project !== undefined ? `project:${key.project}` : key.id;
}
