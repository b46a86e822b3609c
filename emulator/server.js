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
 *  6. An upsert that collides on a unique key answers 409, not 500.
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

// (6) An upsert that collides on a unique key answers 409. The package's upsert, unlike its create and replace,
// lets the store's conflict escape as a 500, which clients retry as a transient error. Handlers look the
// operation up on this module at each call, so replacing the export fixes every caller.
const documentOperations = lib("handler/_document-operations");
const plainUpsertOperation = documentOperations.upsertOperation;
documentOperations.upsertOperation = (collection, input) => {
  try {
    return plainUpsertOperation(collection, input);
  } catch (err) {
    if (err.conflict) return { statusCode: 409, body: { code: "Conflict", message: err.message } };
    if (err.badRequest) return { statusCode: 400, body: { code: "BadRequest", message: err.message } };
    throw err;
  }
};

// (7) Transactional batch, atomic. The package runs a batch's operations one by one and keeps what the earlier
// ones wrote when a later one fails, and it reads each operation's partition key from the operation, where the
// Python client never puts it (it sends the x-ms-documentdb-partitionkey header once for the batch). Azure runs
// a batch all or nothing: on failure we restore the document store as it was before the batch, report the
// failing operation's status and 424 for the others (what the client reads to raise CosmosBatchOperationError).
const batchDocuments = lib("handler/batch-documents");
const plainBatch = batchDocuments.default;
const readJson = lib("json").default;
batchDocuments.default = async (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  const data = collection.read() && collection.documents;
  if (!data) return plainBatch(account, req, res, params);
  const header = req.headers["x-ms-documentdb-partitionkey"];
  const operations = await readJson(req);
  if (!Array.isArray(operations)) {
    res.statusCode = 400;
    return { code: "BadRequest", message: "Invalid request body" };
  }
  for (const operation of operations) {
    if (operation && operation.partitionKey === undefined && header !== undefined) operation.partitionKey = header;
  }
  const saved = { data: new Map(data._data), index: new Map(data._index), ridCount: data._ridCount };
  const results = await plainBatch(account, Object.assign(Object.create(req), { _cosmigrateBody: operations }), res, params);
  if (Array.isArray(results) && results.some((r) => r.statusCode >= 400)) {
    data._data = saved.data;
    data._index = saved.index;
    data._ridCount = saved.ridCount;
    res.statusCode = 207;
  }
  return results;
};
// The package's batch handler reads the body itself; hand it the one we already parsed.
const jsonModule = lib("json");
const plainJson = jsonModule.default;
jsonModule.default = async (req) => (req._cosmigrateBody !== undefined ? req._cosmigrateBody : plainJson(req));

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
