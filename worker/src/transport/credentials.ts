/** Server credentials: insecure on loopback by default, TLS with a cert/key, mTLS with a client CA. */
import { readFileSync } from "node:fs";
import { ServerCredentials } from "@grpc/grpc-js";
import type { WorkerConfig } from "../config.ts";

export function serverCredentials(tls: WorkerConfig["tls"]): ServerCredentials {
  if (!tls.cert_file && !tls.key_file) return ServerCredentials.createInsecure();
  if (!tls.cert_file || !tls.key_file) {
    throw new Error("tls.cert_file and tls.key_file must be set together (WORKER_TLS_CERT_FILE, WORKER_TLS_KEY_FILE)");
  }
  const ca = tls.client_ca_file ? readFileSync(tls.client_ca_file) : null;
  return ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readFileSync(tls.cert_file), private_key: readFileSync(tls.key_file) }],
    ca !== null,
  );
}
