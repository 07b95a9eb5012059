// Certificates for the TLS tests, made with `openssl` at run time into a
// temporary directory: a certificate authority, a server certificate it signed
// for 127.0.0.1 and localhost, a client certificate (mutual TLS), and a second,
// unrelated authority that must not be trusted.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** PEM text of everything a TLS test needs, and the files they are in. */
export interface TestCerts {
  dir: string;
  /** The authority that signed the server's and the client's certificates. */
  ca: string;
  /** An authority that signed nothing here: trusting only it must fail. */
  otherCa: string;
  serverCert: string;
  serverKey: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCert: string;
  clientKey: string;
  /** Removes the directory. */
  dispose(): void;
}

/** Whether `openssl` runs here. */
export function hasOpenssl(): boolean {
  return spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
}

function openssl(dir: string, args: string[]): void {
  const run = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${run.stderr || run.error}`);
}

/** Makes the certificates; the caller disposes them in a finally. */
export function makeCerts(): TestCerts {
  const parent = process.env.POTSDB_TSDB_TMPDIR || tmpdir();
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, "potsdb-tls-"));
  try {
    const ca = (name: string) =>
      openssl(dir, [
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
        `${name}.key`,
        "-out",
        `${name}.pem`,
      ]);
    ca("potsdb-test-ca");
    ca("potsdb-other-ca");
    const leaf = (name: string, ext: string) => {
      openssl(dir, [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        `/CN=${name}`,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
      ]);
      writeFileSync(join(dir, `${name}.ext`), ext);
      openssl(dir, [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "potsdb-test-ca.pem",
        "-CAkey",
        "potsdb-test-ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.pem`,
      ]);
    };
    leaf(
      "server",
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    );
    leaf("client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
    const read = (file: string) => readFileSync(join(dir, file), "utf8");
    return {
      dir,
      ca: read("potsdb-test-ca.pem"),
      otherCa: read("potsdb-other-ca.pem"),
      serverCert: read("server.pem"),
      serverKey: read("server.key"),
      serverCertFile: join(dir, "server.pem"),
      serverKeyFile: join(dir, "server.key"),
      clientCert: read("client.pem"),
      clientKey: read("client.key"),
      dispose: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
