// httpTransport's requests in flight against a scripted server, as properties: whatever the order the
// answers come in and whatever they are (stored, 503, a lost connection, "too large", points refused
// in ?details), every batch settles once and in order, refusals are exact, a cell is never in two
// requests out, the server sees each cell's points in the order they were sent, and no new body goes
// out between a failure and the next answer. The test answers each request itself, in an order
// fast-check picks, so the interleavings are the generator's, not the scheduler's.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { httpTransport } from "../src/transport/http.ts";
import type { Rejection } from "../src/transport/types.ts";

interface JsonPoint {
  metric: string;
  timestamp: number;
  value: number;
  tags: Record<string, string>;
}

type Answer = "stored" | "503" | "lost" | "storedAnswerLost";

/** The server refuses these points, whenever it stores a body (as OpenTSDB refuses a bad point). */
const refuses = (p: JsonPoint) => p.value % 5 === 3;

interface Pending {
  body: string;
  points: JsonPoint[];
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
}

const cellOf = (p: JsonPoint) => `${p.metric} ${p.timestamp} ${p.tags.i}`;
const tick = () => new Promise((r) => setTimeout(r, 0));

const scenario = fc.record({
  maxInFlight: fc.integer({ min: 1, max: 6 }),
  /** The server refuses bodies over this many bytes ("Chunked request not supported"). */
  serverLimit: fc.integer({ min: 3000, max: 20_000 }),
  /** Lines per write; each line a cell of 3 metrics × 3 seconds × 4 tag values. */
  writes: fc.array(fc.array(fc.integer({ min: 0, max: 35 }), { minLength: 1, maxLength: 120 }), {
    minLength: 1,
    maxLength: 12,
  }),
  /** For each answer: which request out, and what happens to it; after these, every request is stored. */
  answers: fc.array(
    fc.record({
      pick: fc.nat(),
      /** Write the next batch first (and take this step for it). */
      write: fc.boolean(),
      answer: fc.constantFrom<Answer>(
        "stored",
        "stored",
        "stored",
        "503",
        "lost",
        "storedAnswerLost",
      ),
    }),
    { minLength: 1, maxLength: 200 },
  ),
});

describe("httpTransport, requests in flight, against a scripted server (properties)", () => {
  it("settles every batch once and in order, keeps each cell's order, and counts refusals exactly", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ maxInFlight, serverLimit, writes, answers }) => {
        const pending: Pending[] = [];
        /** What the server took, per cell, request by request: the body and the cell's values in it. */
        const taken = new Map<string, { body: string; values: number[] }[]>();
        const refusedByServer = new Set<number>();
        let failing = false;
        const failedBodies = new Set<string>();
        const seenBodies = new Set<string>();
        let violations: string[] = [];

        const fetch = (_url: string, init: RequestInit): Promise<Response> => {
          const body = new TextDecoder().decode(init.body as Uint8Array);
          const points = JSON.parse(body) as JsonPoint[];
          if (pending.length >= maxInFlight) violations.push(`${pending.length + 1} requests out`);
          const cells = new Set(points.map(cellOf));
          if (pending.some((p) => p.points.some((q) => cells.has(cellOf(q))))) {
            violations.push("a cell in two requests out");
          }
          if (failing && !failedBodies.has(body) && !seenBodies.has(body)) {
            violations.push("a new body went out after a failure, before any answer");
          }
          seenBodies.add(body);
          return new Promise((resolve, reject) => pending.push({ body, points, resolve, reject }));
        };

        const connection = await httpTransport({
          fetch,
          gzip: false,
          maxInFlight,
          maxBodyBytes: 8192,
          retry: { initialMs: 1, maxMs: 1 },
        }).connect({ host: "127.0.0.1", port: 4242, signal: new AbortController().signal, onLine: () => {} });

        // Every line a distinct value, in the order sent: a cell's values must reach the server rising.
        let seq = 0;
        const settled: number[] = [];
        const reported: Rejection[] = [];
        let written = 0;
        const writeNext = () => {
          const k = written++;
          const text = writes[k].map((c) =>
            `put m${c % 3} ${1700000000 + (Math.floor(c / 3) % 3)} ${seq++} i=${Math.floor(c / 9)}\n`
          ).join("");
          connection.write(new TextEncoder().encode(text), (error, rejected) => {
            if (error) violations.push(`batch ${k} failed: ${error.message}`);
            settled.push(k);
            reported.push(...(rejected ?? []));
          });
        };
        // The first write now, the others between answers, where the script says.
        writeNext();

        const store = (request: Pending) => {
          const here = new Map<string, number[]>();
          for (const p of request.points) {
            if (refuses(p)) refusedByServer.add(p.value);
            else here.set(cellOf(p), [...(here.get(cellOf(p)) ?? []), p.value]);
          }
          for (const [cell, values] of here) {
            taken.set(cell, [...(taken.get(cell) ?? []), { body: request.body, values }]);
          }
        };
        let next = 0;
        for (let steps = 0; settled.length < writes.length && steps < 20_000; steps++) {
          // The script, then a server that stores everything: every run ends.
          const { pick, answer, write } = answers[next] ?? { pick: 0, answer: "stored", write: true };
          if (written < writes.length && (write || pending.length === 0)) {
            writeNext();
            await tick();
            if (write) next++;
            continue;
          }
          if (pending.length === 0) {
            await tick();
            continue;
          }
          next++;
          const [request] = pending.splice(pick % pending.length, 1);
          if (request.body.length > serverLimit) {
            failing = false;
            request.resolve(
              new Response(
                JSON.stringify({ error: { code: 400, message: "Chunked request not supported." } }),
                {
                  status: 400,
                },
              ),
            );
          } else if (answer === "503" || answer === "lost") {
            failing = true;
            failedBodies.add(request.body);
            if (answer === "503") request.resolve(new Response("overloaded", { status: 503 }));
            else request.reject(new TypeError("fetch failed"));
          } else if (answer === "storedAnswerLost") {
            // Stored, but the answer never came: sent again, so stored twice (at least once).
            store(request);
            failing = true;
            failedBodies.add(request.body);
            request.reject(new TypeError("fetch failed"));
          } else {
            // Stored, but for the points it refuses: OpenTSDB's 400 with ?details then.
            failing = false;
            store(request);
            const refused = request.points.filter(refuses);
            request.resolve(
              refused.length === 0 ? new Response(null, { status: 204 }) : new Response(
                JSON.stringify({
                  success: request.points.length - refused.length,
                  failed: refused.length,
                  errors: refused.map((p) => ({ datapoint: p, error: "refused" })),
                }),
                { status: 400 },
              ),
            );
          }
          await tick();
        }
        connection.destroy();

        assert.deepEqual(violations, []);
        violations = [];
        assert.deepEqual(settled, writes.map((_, k) => k), "every batch settled once, in order");
        // Refusals reported are exactly the server's, each once.
        const reportedValues = reported.map((r) => Number(r.line.split(" ")[3])).sort((a, b) => a - b);
        assert.deepEqual(reportedValues, [...refusedByServer].sort((a, b) => a - b));
        // Each cell's points reached the server in the order sent: a request that was sent again
        // (its answer lost) repeats itself, but no other request of the cell came between.
        const stored = new Set<number>();
        const lastSent = new Map<string, number>();
        for (let v = 0; v < seq; v++) {
          if (refusedByServer.has(v)) continue;
          const c = writes.flat()[v];
          lastSent.set(`m${c % 3} ${1700000000 + (Math.floor(c / 3) % 3)} ${Math.floor(c / 9)}`, v);
        }
        for (const [cell, requests] of taken) {
          for (let i = 1; i < requests.length; i++) {
            if (requests[i].body === requests[i - 1].body) continue;
            assert.ok(
              Math.min(...requests[i].values) > Math.max(...requests[i - 1].values),
              `cell ${cell} took ${requests.map((r) => r.values.join(",")).join(" | ")}`,
            );
          }
          for (const r of requests) for (const v of r.values) stored.add(v);
          const last = requests.at(-1)!.values;
          assert.equal(last.at(-1), lastSent.get(cell), `cell ${cell} ends with the value sent last`);
        }
        for (let v = 0; v < seq; v++) {
          assert.ok(stored.has(v) || refusedByServer.has(v), `point ${v} never reached the server`);
        }
      }),
      { numRuns: 150 },
    );
  });
});
