#!/usr/bin/env node
/*
 * Fault-injecting HTTPS reverse proxy in front of the local Cosmos DB endpoint (cosmigrate/testing/local_endpoint/server.js).
 *
 * Why: the local endpoint never throttles (429), is never unavailable (503) and never cuts a connection; the
 * real service does all three. The azure-cosmos client retries 429 (and 503 a little) itself, but not a write whose
 * connection was cut after sending (its outcome is unknown), so cosmigrate's own retries must cope with it.
 * This proxy lets the tests exercise both, against the real local endpoint.
 *
 * Per request to /dbs... (never "/", the account read, nor /__faults), one PRNG draw decides:
 *   rate429     answer 429 (x-ms-retry-after-ms: 20, substatus 3200) without forwarding
 *   rate503     answer 503 without forwarding
 *   rate-reset  forward, wait for the whole upstream response, then destroy the client socket unanswered
 *   otherwise   forward transparently (method, path, headers with host rewritten, body; response unchanged)
 * The account document ("/") is forwarded too, with its regional endpoints pointed at the proxy: they name the
 * upstream, and the client would otherwise send every later request straight there.
 * GET /__faults answers {"forwarded":N,"account":N,"429":N,"503":N,"reset":N}; "account" counts the forwarded
 * requests outside /dbs (the client's account reads), which are also in "forwarded".
 *
 * --account-delay-ms N holds every account read that long before forwarding it: the client's background endpoint
 * check (started with each client) is then still running when a short command closes its client.
 *
 * An outage, on signals: SIGUSR1 takes the proxy down, SIGUSR2 brings it back on the same port. With
 * --outage refuse (the default) it stops listening and destroys every open connection, so new connections are
 * refused, as for a database that is gone; with --outage hang it keeps accepting connections and reading
 * requests but answers none of them (a network that drops the answers), until it comes back. Each change is
 * acknowledged with a line "down" or "up" on stdout.
 *
 * Usage: node fault_proxy.js --upstream https://127.0.0.1:PORT --port 0
 *          [--rate429 0.1] [--rate503 0.05] [--rate-reset 0.02] [--seed N] [--account-delay-ms N]
 * Prints one line "listening 127.0.0.1:<port>" on stdout when ready.
 */
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const https = require("https");
const path = require("path");

const USAGE =
  "usage: node fault_proxy.js --upstream https://HOST:PORT [--port N] [--rate429 P] [--rate503 P] " +
  "[--rate-reset P] [--seed N] [--account-delay-ms N] [--outage refuse|hang] --tls-dir DIR\n";
const OPTIONS = { "--upstream": "upstream", "--port": "port", "--rate429": "rate429", "--rate503": "rate503",
  "--rate-reset": "rateReset", "--seed": "seed", "--tls-dir": "tlsDir",
  "--account-delay-ms": "accountDelayMs", "--outage": "outage" };

function parseArgs(argv) {
  const args = { upstream: null, port: "0", rate429: "0", rate503: "0", rateReset: "0", seed: null, tlsDir: null,
    accountDelayMs: "0", outage: "refuse" };
  for (let i = 0; i < argv.length; i += 1) {
    const key = OPTIONS[argv[i]];
    if (!key || i + 1 >= argv.length) {
      process.stderr.write(`unknown or incomplete argument ${argv[i]}; ${USAGE}`);
      process.exit(2);
    }
    args[key] = argv[(i += 1)];
  }
  const numbers = ["port", "rate429", "rate503", "rateReset", "accountDelayMs"];
  if (args.seed !== null) numbers.push("seed");
  for (const key of numbers) {
    args[key] = Number(args[key]);
    if (!Number.isFinite(args[key])) {
      process.stderr.write(`bad number for ${key}; ${USAGE}`);
      process.exit(2);
    }
  }
  if (!["refuse", "hang"].includes(args.outage)) {
    process.stderr.write(`--outage is refuse or hang; ${USAGE}`);
    process.exit(2);
  }
  if (!args.upstream || !args.tlsDir) {
    process.stderr.write(`--upstream and --tls-dir are required; ${USAGE}`);
    process.exit(2);
  }
  return args;
}

// mulberry32: a small seeded PRNG, so that a run with --seed injects the same faults in the same order.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const args = parseArgs(process.argv.slice(2));
const upstream = new URL(args.upstream);
const upstreamHost = upstream.host; // host:port
const random = args.seed === null ? Math.random : mulberry32(args.seed);
const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
const counts = { forwarded: 0, account: 0, 429: 0, 503: 0, reset: 0 };
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "upgrade"]);

function withoutHopByHop(headers) {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

function answer(res, status, body, extra = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text),
    "x-ms-request-charge": "0", "x-ms-activity-id": crypto.randomUUID(), ...extra });
  res.end(text);
}

// The account document lists the regional endpoints the client then uses for every other request; they name
// the upstream, so point them at this proxy, or all later requests would bypass it.
function answerAccount(req, res, upstreamRes) {
  const chunks = [];
  upstreamRes.on("data", (chunk) => chunks.push(chunk));
  upstreamRes.on("end", () => {
    let body = Buffer.concat(chunks);
    try {
      const account = JSON.parse(body);
      for (const location of [...(account.writableLocations || []), ...(account.readableLocations || [])]) {
        location.databaseAccountEndpoint = `https://${req.headers.host}/`;
      }
      body = Buffer.from(JSON.stringify(account));
    } catch (err) { /* not JSON (an error page?): pass it on unchanged */ }
    const headers = withoutHopByHop(upstreamRes.headers);
    delete headers["transfer-encoding"];
    res.writeHead(upstreamRes.statusCode, upstreamRes.statusMessage, { ...headers, "content-length": body.length });
    res.end(body);
  });
}

function forward(req, res, cut) {
  counts.forwarded += 1;
  const headers = { ...withoutHopByHop(req.headers), host: upstreamHost };
  const upstreamReq = https.request(
    { protocol: "https:", hostname: upstream.hostname, port: upstream.port || 443, method: req.method,
      path: req.url, headers, agent },
    (upstreamRes) => {
      if (cut) {
        // let the upstream finish (the write really happens), then cut the client off without an answer
        upstreamRes.resume();
        upstreamRes.on("end", () => req.socket.destroy());
        return;
      }
      if (req.method === "GET" && req.url === "/") return answerAccount(req, res, upstreamRes);
      res.writeHead(upstreamRes.statusCode, upstreamRes.statusMessage, withoutHopByHop(upstreamRes.headers));
      upstreamRes.pipe(res);
    },
  );
  upstreamReq.on("error", (err) => {
    if (res.headersSent) res.destroy();
    else answer(res, 502, { code: "BadGateway", message: `fault_proxy: upstream ${upstreamHost}: ${err.message}` });
  });
  res.on("close", () => { if (!res.writableFinished) upstreamReq.destroy(); });
  req.pipe(upstreamReq);
}

let down = false;
const held = new Set(); // requests left unanswered while down in hang mode

function handle(req, res) {
  const pathname = req.url.split("?")[0];
  if (down) {
    held.add(res);
    res.on("close", () => held.delete(res));
    return undefined; // hang: never answered while the outage lasts
  }
  if (pathname === "/__faults") return answer(res, 200, counts);
  if (!pathname.startsWith("/dbs")) {
    counts.account += 1; // the client's account reads (endpoint discovery), counted apart from the tool's own
    if (args.accountDelayMs > 0) return setTimeout(() => forward(req, res, false), args.accountDelayMs);
    return forward(req, res, false);
  }
  const draw = random();
  if (draw < args.rate429) {
    counts["429"] += 1;
    req.resume();
    return answer(res, 429, { code: "TooManyRequests", message: "Request rate is large (injected by fault_proxy)" },
      { "x-ms-retry-after-ms": "20", "x-ms-substatus": "3200" });
  }
  if (draw < args.rate429 + args.rate503) {
    counts["503"] += 1;
    req.resume();
    return answer(res, 503, { code: "ServiceUnavailable", message: "injected by fault_proxy" });
  }
  const cut = draw < args.rate429 + args.rate503 + args.rateReset;
  if (cut) counts.reset += 1;
  return forward(req, res, cut);
}

// the local endpoint's own self-signed certificate (in the npm package the launcher installed)
const tlsDir = args.tlsDir;
const server = https.createServer(
  { cert: fs.readFileSync(path.join(tlsDir, "cert.pem")), key: fs.readFileSync(path.join(tlsDir, "key.pem")),
    keepAlive: true },
  handle,
);
server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.on("error", (err) => {
  process.stderr.write(`fault_proxy: ${err.message}\n`);
  process.exit(1);
});
const sockets = new Set();
server.on("connection", (socket) => {
  sockets.add(socket);
  socket.on("close", () => sockets.delete(socket));
});
let port = args.port;
server.listen(port, "127.0.0.1", () => {
  port = server.address().port;
  process.stdout.write(`listening 127.0.0.1:${port}\n`);
});
let closed = Promise.resolve();
setInterval(() => {}, 1 << 30); // while down, nothing else keeps the process alive
process.on("SIGUSR1", () => {
  if (down) return;
  down = true;
  if (args.outage === "refuse") {
    closed = new Promise((resolve) => server.close(resolve));
    for (const socket of sockets) socket.destroy();
  }
  process.stdout.write("down\n");
});
process.on("SIGUSR2", () => {
  if (!down) return;
  down = false;
  for (const res of held) res.destroy();
  held.clear();
  if (args.outage === "refuse") {
    closed.then(() => server.listen(port, "127.0.0.1", () => process.stdout.write("up\n")));
  } else {
    process.stdout.write("up\n");
  }
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
