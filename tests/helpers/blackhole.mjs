// A loopback listener that never accepts: it listens with a backlog of 1 and
// then blocks its only thread, so the kernel's accept queue fills with the
// first two connections and later SYNs go unanswered (SYN-SENT until the
// client gives up). Used to stage a connect that never completes.
// Usage: node blackhole.mjs → prints "PORT <n>", then blocks until killed.
import * as net from "node:net";

const server = net.createServer();
// Node turns a backlog of 0 into its default (511); 1 is the smallest that sticks.
server.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
