// The fake OpenTSDB of fake_tsd.mjs, in this process, typed for the tests.

import { helperDir } from "./fault_servers.ts";

/** The fake TSD of tests/helpers/fake_tsd.mjs, as this file uses it. */
export interface FakeTsd {
  port: number;
  puts: string[];
  readonly probes: number;
  readonly connections: number;
  answer: boolean;
  pause(): void;
  dropAll(): void;
  close(): Promise<void>;
}

export async function startFakeTsd(options: { answer?: boolean; port?: number } = {}): Promise<FakeTsd> {
  const mod = await import(new URL("./fake_tsd.mjs", helperDir()).href);
  // `answer` is read per probe, so a test can make a server stop answering.
  const control = { answer: options.answer ?? false };
  const tsd = await mod.startFakeTsd({
    port: options.port,
    get answer() {
      return control.answer;
    },
  });
  return Object.defineProperty(tsd, "answer", {
    get: () => control.answer,
    set: (v: boolean) => control.answer = v,
  }) as FakeTsd;
}
