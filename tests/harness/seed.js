#!/usr/bin/env node
/*
 * Seed a container fast, for tests and benchmarks: upserts over the Cosmos DB REST API with keep-alive and many
 * requests in flight, signed with the account key like any client (so it works whether or not the endpoint
 * checks signatures). Why not Python: the azure-cosmos client spends ~1.4 ms of CPU per request, so one process
 * tops out near 700 writes/s; this does several thousand, bounded by the endpoint itself. No transactional
 * batch (the data under test must arrive as ordinary single-document writes).
 *
 * Documents: {"id": "d000042", "pk": "p<i % partitions>", "n": i, "pad": "x" * 100} for i in [start, stop).
 * Usage: node seed.js URL KEY DATABASE CONTAINER START STOP [PARTITIONS]; prints "seeded N" when done.
 */
"use strict";

const crypto = require("crypto");
const https = require("https");

const [url, key, database, container, start, stop, partitionsArg] = process.argv.slice(2);
if (!url || !key || !database || !container || start === undefined || stop === undefined) {
  process.stderr.write("usage: node seed.js URL KEY DATABASE CONTAINER START STOP [PARTITIONS]\n");
  process.exit(2);
}
const endpoint = new URL(url);
const partitions = Number(partitionsArg || 97);
const agent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
const link = `dbs/${database}/colls/${container}`;
const secret = Buffer.from(key, "base64");
const PAD = "x".repeat(100);

function authorization(verb, date) {
  const text = `${verb.toLowerCase()}\ndocs\n${link}\n${date.toLowerCase()}\n\n`;
  const signature = crypto.createHmac("sha256", secret).update(text).digest("base64");
  return encodeURIComponent(`type=master&ver=1.0&sig=${signature}`);
}

function upsert(i, attempt = 0) {
  const id = `d${String(i).padStart(6, "0")}`;
  const pk = `p${i % partitions}`;
  const body = JSON.stringify({ id, pk, n: i, pad: PAD });
  const date = new Date().toUTCString();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        hostname: endpoint.hostname, port: endpoint.port, path: `/${link}/docs`, method: "POST", agent,
        headers: {
          "content-type": "application/json", "content-length": Buffer.byteLength(body),
          "x-ms-date": date, "x-ms-version": "2018-12-31", authorization: authorization("POST", date),
          "x-cosmigrate-local-setup": "true", // let through by the endpoint in Entra mode (the harness seeds)
          "x-ms-documentdb-partitionkey": JSON.stringify([pk]), "x-ms-documentdb-is-upsert": "true",
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode < 300) resolve();
          else if (attempt < 5 && (res.statusCode === 429 || res.statusCode >= 500)) {
            setTimeout(() => upsert(i, attempt + 1).then(resolve, reject), 50);
          } else reject(new Error(`upsert ${id}: HTTP ${res.statusCode}`));
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function main() {
  let next = Number(start);
  const end = Number(stop);
  const workers = Array.from({ length: 32 }, async () => {
    while (next < end) {
      const i = next;
      next += 1;
      await upsert(i);
    }
  });
  await Promise.all(workers);
  process.stdout.write(`seeded ${end - Number(start)}\n`);
  agent.destroy();
}

main().catch((err) => {
  process.stderr.write(`seed.js: ${err.message}\n`);
  process.exit(1);
});
