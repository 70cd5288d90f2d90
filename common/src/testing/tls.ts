/**
 * A throwaway PKI for TLS tests, made with the system's openssl: a CA, a second ("rogue") CA, a server
 * certificate for loopback (IP 127.0.0.1, DNS localhost) and client certificates from each CA.
 * Files: ca.crt/key, rogue-ca.crt/key, server.crt/key, client.crt/key, rogue-client.crt/key.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  /** Path of a file in the PKI, e.g. file("client.crt"). */
  file(name: string): string;
  read(name: string): Buffer;
}

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "pki-"));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const ca = (name: string) =>
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      file(`${name}.key`),
      "-out",
      file(`${name}.crt`),
    );
  const leaf = (name: string, signer: string, ext: string) => {
    writeFileSync(file(`${name}.ext`), ext);
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`));
    openssl(
      "x509",
      "-req",
      "-in",
      file(`${name}.csr`),
      "-CA",
      file(`${signer}.crt`),
      "-CAkey",
      file(`${signer}.key`),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      file(`${name}.ext`),
      "-out",
      file(`${name}.crt`),
    );
  };
  ca("ca");
  ca("rogue-ca");
  leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  leaf("client", "ca", "extendedKeyUsage=clientAuth\n");
  leaf("rogue-client", "rogue-ca", "extendedKeyUsage=clientAuth\n");
  return { dir, file, read: (name) => readFileSync(file(name)) };
}
