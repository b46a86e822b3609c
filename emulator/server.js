#!/usr/bin/env node
/*
 * Local Cosmos DB endpoint for cosmigrate: @vercel/cosmosdb-server (a real Cosmos DB REST server over HTTPS),
 * started with keep-alive and corrected where it differs from the real service in ways a migration tool
 * depends on (see ../shared/NOTES.md and README.md "The local endpoint"):
 *
 *  1. Keep-alive. The package's CLI closes every connection (~39 req/s); keep-alive serves ~760 req/s.
 *  2. Replacing a container keeps its documents. The package builds a new, empty Collection object on
 *     replace; we move the old documents, functions and partition key ranges onto the new object.
 *  3. A unique key with several paths is checked on the paths taken together, as Azure does. The package
 *     checks each path alone; we give the document store one combined key per unique key.
 *  4. A point read of a missing document answers 404. The package dereferences the missing document and
 *     answers 500 ("Cannot read properties of undefined"), which clients treat as a transient error.
 *  5. Index transformation progress is honest enough to test against: after a replace that changes the
 *     indexing policy, reads of that container report progress 0 rising to 100 over
 *     COSMOS_LOCAL_INDEX_SECONDS seconds (default 2), instead of always -1.
 *
 * Usage: node server.js [--port N] [--host 127.0.0.1]   (port 0 picks a free one)
 * Prints one line "listening <host>:<port>" on stdout when ready.
 */
"use strict";

const lib = (name) => require(`@vercel/cosmosdb-server/lib/${name}`);

// (3) Combined unique keys. The package looks a document up by one "key path" at a time through getValue;
// a combined key path is encoded as one segment that getValue expands to the JSON of all its paths' values.
const COMBINED = "__cosmigrate_unique__";
const getValueModule = lib("utils/get-value");
const plainGetValue = getValueModule.default;
getValueModule.default = (keys, obj) => {
  if (keys.length === 1 && keys[0].startsWith(COMBINED)) {
    const paths = JSON.parse(decodeURIComponent(keys[0].slice(COMBINED.length)));
    const values = paths.map((p) => plainGetValue(p.slice(1).split("/"), obj));
    return JSON.stringify(values.map((v) => (v === undefined ? null : v)));
  }
  return plainGetValue(keys, obj);
};
const combinedKeyPath = (paths) => `/${COMBINED}${encodeURIComponent(JSON.stringify(paths))}`;

const Collections = lib("account/collections").default;
const plainNewItem = Collections.prototype._newItem;
Collections.prototype._newItem = function newItem(data) {
  const collection = plainNewItem.call(this, data);
  const uniqueKeys = ((data || {}).uniqueKeyPolicy || {}).uniqueKeys || [];
  collection.documents._uniqueKeyPaths = uniqueKeys.map((k) => combinedKeyPath(k.paths)).concat("/id");
  return collection;
};

// (2) and (5): keep the documents across a replace and start an index transformation clock.
const transformStartedAt = new Map(); // container _rid -> ms
const plainReplace = Collections.prototype.replace;
Collections.prototype.replace = function replace(data, original) {
  const old = this._data.get(original._rid);
  const result = plainReplace.call(this, data, original);
  const fresh = this._data.get(result._rid);
  if (old && fresh && old !== fresh) {
    for (const store of ["documents", "userDefinedFunctions", "partitionKeyRanges"]) {
      const kept = old[store];
      kept._parent = fresh;
      fresh[store] = kept;
    }
  }
  if (JSON.stringify(original.indexingPolicy) !== JSON.stringify(result.indexingPolicy)) {
    transformStartedAt.set(result._rid, Date.now());
  }
  return result;
};

const indexSeconds = Number(process.env.COSMOS_LOCAL_INDEX_SECONDS || "2");
const PROGRESS = "x-ms-documentdb-collection-index-transformation-progress";
const readCollection = lib("handler/read-collection");
const plainReadCollection = readCollection.default;
readCollection.default = async (account, req, res, params) => {
  const body = await plainReadCollection(account, req, res, params);
  const started = body && transformStartedAt.get(body._rid);
  if (started !== undefined) {
    const elapsed = (Date.now() - started) / 1000;
    if (elapsed >= indexSeconds) {
      transformStartedAt.delete(body._rid);
      res.setHeader(PROGRESS, "100");
    } else {
      res.setHeader(PROGRESS, String(Math.floor((elapsed / indexSeconds) * 100)));
    }
  }
  return body;
};

// ---- Data engine (cosmigrate/data): queries scoped to one partition key range -------------------------------
// A feed-range query (azure-cosmos `query_items(feed_range=...)`, how work is split for parallel reads) names its
// physical partition in x-ms-documentdb-partitionkeyrangeid and does not enable cross-partition queries: Azure
// serves it as a query over that partition. The package refuses it ("missing partition keys"). This server has
// one partition key range covering every key, so such a query is a query over the whole container: we let it
// through as a cross-partition one. A strict sub-range (x-ms-start-epk / x-ms-end-epk, sent only when a feed
// range is narrower than its partition) would need effective-partition-key hashing, which the package lacks:
// refused with 400 rather than answered with documents outside the range. Tested by tests/test_data_endpoint.py.
const queryDocuments = lib("handler/query-documents");
const plainQueryDocuments = queryDocuments.default;
queryDocuments.default = async (account, req, res, params) => {
  if (req.headers["x-ms-documentdb-partitionkeyrangeid"] !== undefined) {
    if (req.headers["x-ms-start-epk"] !== undefined || req.headers["x-ms-end-epk"] !== undefined) {
      res.statusCode = 400;
      return { code: "BadRequest", message: "feed ranges narrower than a partition are not supported locally" };
    }
    req.headers["x-ms-documentdb-query-enablecrosspartition"] = "true";
  }
  return plainQueryDocuments(account, req, res, params);
};

// Linear scans. The query compiler (@zeit/cosmosdb-query) turns `FROM c` (and each JOIN) into
// `docs.reduce(($, c) => [...$, { c }], [])`, which copies the accumulator for every document: each query page
// costs O(n^2) in the container's size (1.5 s per page at 20,000 documents, so a full scan is O(n^3)). We rewrite
// those accumulators in the compiled AST to `($.push(...), $)`: same result (the accumulator is the reduce's own
// fresh array), O(n) per page (15 ms at 20,000 documents).
const queryPackage = require.resolve("@zeit/cosmosdb-query", { paths: [require.resolve("@vercel/cosmosdb-server")] });
const transformerModule = require(require("path").join(require("path").dirname(queryPackage), "transformer"));
const plainTransform = transformerModule.default;
const isAccumulatorSpread = (node) =>
  node && node.type === "SpreadElement" && node.argument && node.argument.type === "Identifier" && node.argument.name === "$";
function pushAccumulators(node) {
  if (Array.isArray(node)) return node.map(pushAccumulators);
  if (!node || typeof node !== "object") return node;
  for (const key of Object.keys(node)) node[key] = pushAccumulators(node[key]);
  if (node.type === "ArrayExpression" && node.elements.length > 0 && isAccumulatorSpread(node.elements[0])) {
    const push = { type: "MemberExpression", object: { type: "Identifier", name: "$" },
      property: { type: "Identifier", name: "push" }, computed: false };
    return { type: "SequenceExpression",
      expressions: [{ type: "CallExpression", callee: push, arguments: node.elements.slice(1) }, { type: "Identifier", name: "$" }] };
  }
  return node;
}
transformerModule.default = (ast) => pushAccumulators(plainTransform(ast));
// ---- end of the data engine's section ----------------------------------------------------------------------

// (4) 404 for a point read of a missing document: the handler's only dereference of an absent document.
const readDocument = lib("handler/read-document");
const plainReadDocument = readDocument.default;
readDocument.default = (account, req, res, params) => {
  try {
    return plainReadDocument(account, req, res, params);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    res.statusCode = 404;
    return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
  }
};

// Required only now, so that the routes table picks up the patched handlers.
const { createHttpsServer } = require("@vercel/cosmosdb-server");

function parseArgs(argv) {
  const args = { port: 8081, host: "127.0.0.1" };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === "--port") args.port = Number(argv[(i += 1)]);
    else if (argv[i] === "--host") args.host = argv[(i += 1)];
    else {
      process.stderr.write(`unknown argument ${argv[i]}; usage: node server.js [--port N] [--host H]\n`);
      process.exit(2);
    }
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const server = createHttpsServer({ keepAlive: true });
server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.on("error", (err) => {
  process.stderr.write(`local Cosmos DB endpoint: ${err.message}\n`);
  process.exit(1);
});
server.listen(args.port, args.host, () => {
  const { port } = server.address();
  process.stdout.write(`listening ${args.host}:${port}\n`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
