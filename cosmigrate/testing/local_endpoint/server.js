#!/usr/bin/env node
/*
 * Local Cosmos DB endpoint for cosmigrate: @vercel/cosmosdb-server (a real Cosmos DB REST server over HTTPS),
 * started with keep-alive and corrected where it differs from the real service in ways a migration tool
 * depends on (see README.md "The local endpoint"):
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
 *  7. Transactional batch works from the Python client, in one logical partition, all or nothing, and a failed
 *     batch answers 207 with the failing operation's status and 424 for the others, as Azure does.
 *  13. Entra ID mode (COSMOS_LOCAL_AUTH=entra, entra.js): bearer tokens instead of the key, and the data plane
 *     refuses metadata writes as Azure does for an Entra token.
 *  14. In Entra mode, the Azure Resource Manager routes for SQL databases, containers and throughput (arm.js).
 *  15. ORDER BY refused without the index or composite index it needs, as Azure refuses it (orderby.js).
 *  8. The key is checked: every request must carry a master-key signature made with COSMOS_LOCAL_KEY (default
 *     the emulator's public well-known key), or it is answered 401, as Cosmos DB does. The package accepts any.
 *  9. A point read of a document without a partition key value works. The client sends the undefined value as
 *     "[{}]", which the package's read (unlike its patch, replace and delete) takes for no key at all (400).
 * 10. Container properties are stored and returned in Azure's shape (properties.js): the defaults the service
 *     adds (conflictResolutionPolicy, geospatialConfig, uniqueKeyPolicy, partitionKey.kind, indexingPolicy's
 *     automatic, "/*" and '/"_etag"/?' paths, the _docs... links), computed properties, vector and full-text
 *     policies and indexes, default and analytical TTL; a replace follows Azure's rules: a partition key change
 *     is 400, a unique key change 403, a conflict resolution or vector policy change 400, defaultTtl left out
 *     turns TTL off, analytical store once turned off (0) stays off. The package accepted any replace that kept
 *     the partition key object byte for byte, and a body with another container's id replaced that one.
 * 11. Throughput (offers.js). The package has no /offers route: every throughput call failed "no route". Creating
 *     a database or a container with manual or autoscale throughput creates its offer; GET /offers, GET and PUT
 *     /offers/{rid} and offer queries work with Azure's limits (minimum, steps, maximum: 400), ETags and
 *     x-ms-cosmos-min-throughput; switching between manual and autoscale takes the migrate headers
 *     (x-ms-cosmos-migrate-offer-to-autopilot / -to-manual-throughput), as on Azure; deletes drop the offers.
 * 12. Offers are signed as Cosmos DB specifies: resource type "offers", and for one offer the link is its rid
 *     alone, lower-cased (REST docs "Get an Offer"), which is what the SDKs sign.
 *
 * Request bodies: a correction that must see a body before the package's handler does reads it with readBody;
 * the handler then gets the same parsed body (the package reads bodies through its json module, patched below).
 *
 * Usage: node server.js [--port N] [--host 127.0.0.1]   (port 0 picks a free one)
 * Prints one line "listening <host>:<port>" on stdout when ready.
 */
"use strict";

const lib = (name) => require(`@vercel/cosmosdb-server/lib/${name}`);

// Request bodies, read once: the parsed body (a promise) is kept on the request, and the package's handlers, which
// read bodies through lib("json") at each call, get that same promise.
const BODY = Symbol("cosmigrate body");
const jsonModule = lib("json");
const plainJson = jsonModule.default;
jsonModule.default = (req) => req[BODY] || plainJson(req);
const readBody = (req) => {
  if (!req[BODY]) req[BODY] = plainJson(req);
  return req[BODY];
};

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

// (15) ORDER BY refused as Azure refuses it without the index it needs (orderby.js).
require("./orderby")({ lib, readBody });

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
// (9) The undefined partition key value "[{}]": the document with that id whose partition key path is absent.
const readDocument = lib("handler/read-document");
const plainReadDocument = readDocument.default;
const UNDEFINED_KEY = "[{}]";
function readUndefinedKey(account, req, res, { dbId, collId, docId }) {
  const collection = account.database(dbId).collection(collId);
  const definition = collection.read();
  const result = definition
    ? lib("handler/_document-operations").readOperation(collection, { partitionKey: UNDEFINED_KEY, id: docId })
    : { statusCode: 404 };
  const paths = definition ? (definition.partitionKey || {}).paths || [] : [];
  const keyed = (body) =>
    paths.some((path) => path !== "/_partitionKey" && plainGetValue(path.slice(1).split("/"), body) !== undefined);
  if (result.statusCode !== 200 || keyed(result.body)) {
    res.statusCode = 404;
    return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
  }
  res.statusCode = 200;
  return result.body;
}
readDocument.default = (account, req, res, params) => {
  try {
    if (getPartitionFromHeader(req) === UNDEFINED_KEY) return readUndefinedKey(account, req, res, params);
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

// (7) Transactional batch. The package's handler takes each operation's partition key from the operation
// itself, which the Python client never sends (it sends one partition key header for the whole batch), so
// every batch from it fails with 500; it knows no Patch; and it is not atomic: an operation that fails leaves
// the earlier ones written. Azure runs a batch against one logical partition, all or nothing, and answers a
// failed batch with 207 Multi-Status: the failing operation carries its own status, every other one 424
// (Failed Dependency), earlier ones included since they were undone. The Python client raises
// CosmosBatchOperationError from that shape (the first non-424 status >= 400 gives error_index).
// The operations themselves are the package's single-document ones, so a batch meets the same unique keys
// (including the combined ones of (3)), ETag conditions and 404s as single calls do.
const { patchOperation } = lib("handler/_patch-operations");
const partitionHeader = lib("utils/get-partition-from-header");
const { parsePartitionKey } = partitionHeader;
const getPartitionFromHeader = partitionHeader.default;
const readJson = lib("json").default;
const trueHeader = lib("true-header").default;
const MAX_BATCH_OPERATIONS = 100; // Azure's limit per transactional batch
const WRITES = new Set(["Create", "Upsert", "Replace", "Delete", "Patch"]);

const badRequest = (message) => ({ statusCode: 400, body: { code: "BadRequest", message } });

// Azure treats a missing value, null and the "none" marker ({}) of a partition key component alike here.
const partitionValue = (value) =>
  value === undefined || value === null || typeof value === "object" ? null : value;

// The document's partition key values (every path of a hierarchical key) against the batch's header.
function inBatchPartition(collection, headerValues, document) {
  const paths = ((collection.read() || {}).partitionKey || {}).paths || ["/id"];
  return paths.every(
    (path, i) =>
      partitionValue(plainGetValue(path.slice(1).split("/"), document)) === partitionValue(headerValues[i]),
  );
}

function runBatchOperation(collection, header, headerValues, input) {
  const type = input && input.operationType;
  const body = input && input.resourceBody;
  if (type === "Create" || type === "Upsert" || type === "Replace") {
    if (!body || typeof body !== "object" || typeof body.id !== "string") return badRequest("missing id");
    // The package's create files a document under its own partition key whatever the header says; Azure
    // refuses a document outside the batch's partition.
    if (!inBatchPartition(collection, headerValues, body)) {
      return badRequest("PartitionKey extracted from document doesn't match the one specified in the header.");
    }
  }
  const common = { partitionKey: header, ifMatch: input && input.ifMatch };
  switch (type) {
    case "Create":
      return documentOperations.createOperation(collection, { resourceBody: body });
    case "Upsert":
      return documentOperations.upsertOperation(collection, { ...common, resourceBody: body });
    case "Replace":
      // The package replaces whatever document the body names; the operation targets input.id.
      if (input.id !== undefined && input.id !== body.id) return badRequest("The id in the body does not match.");
      return documentOperations.replaceOperation(collection, { ...common, resourceBody: body });
    case "Delete":
      return documentOperations.deleteOperation(collection, { ...common, id: input.id });
    case "Read":
      return documentOperations.readOperation(collection, { ...common, id: input.id });
    case "Patch":
      if (!body || !Array.isArray(body.operations)) return badRequest("Invalid patch request: no operations.");
      return patchOperation(collection, {
        ...common,
        id: input.id,
        operations: body.operations,
        condition: body.condition,
      });
    default:
      return badRequest(`Operation type '${type}' is not supported in a batch.`);
  }
}

// The id of the document an operation writes: in its body for create, upsert and replace, beside it otherwise.
const targetId = (input) =>
  input.resourceBody && input.operationType !== "Patch" ? input.resourceBody.id : input.id;

const batchDocuments = lib("handler/batch-documents");
batchDocuments.default = async (account, req, res, { dbId, collId }) => {
  const operations = await readJson(req).catch(() => undefined); // not JSON: refused below, not a 500
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) {
    res.statusCode = 404;
    return { code: "NotFound", message: "Resource Not Found" };
  }
  if (!Array.isArray(operations) || operations.length === 0) {
    res.statusCode = 400;
    return { code: "BadRequest", message: "A batch needs a list of operations." };
  }
  if (operations.length > MAX_BATCH_OPERATIONS) {
    res.statusCode = 400;
    return { code: "BadRequest", message: "Batch request has more operations than what is supported." };
  }
  const header = getPartitionFromHeader(req);
  let headerValues;
  try {
    headerValues = JSON.parse(header);
  } catch (err) {
    headerValues = undefined;
  }
  if (!Array.isArray(headerValues)) {
    res.statusCode = 400;
    return { code: "BadRequest", message: "A batch needs its partition key in x-ms-documentdb-partitionkey." };
  }
  const atomic = trueHeader(req, "x-ms-cosmos-batch-atomic");
  const continueOnError = trueHeader(req, "x-ms-cosmos-batch-continue-on-error");

  // Undo log: the document each write targets as it was before, restored newest first. Node runs this loop
  // without yielding, so no other request sees the intermediate states.
  const undo = [];
  const rollBack = () => {
    for (const { id, partition, before } of undo.reverse()) {
      if (collection.document(id, partition).read()) collection.documents.delete(id, partition);
      if (before) collection.documents._set(before); // the stored object itself: same _etag, _ts, _rid
    }
  };
  const results = [];
  let failed = -1;
  try {
    for (const input of operations) {
      if (failed >= 0 && (atomic || !continueOnError)) break;
      if (atomic && input && WRITES.has(input.operationType) && typeof targetId(input) === "string") {
        const id = targetId(input);
        const partition = parsePartitionKey(header, id);
        undo.push({ id, partition, before: collection.document(id, partition).read() });
      }
      const result = runBatchOperation(collection, header, headerValues, input);
      if (result.statusCode >= 400 && failed < 0) failed = results.length;
      results.push(result);
    }
  } catch (err) {
    if (atomic) rollBack();
    throw err;
  }
  if (failed >= 0 && atomic) {
    rollBack();
    res.statusCode = 207;
    const dependent = { statusCode: 424, requestCharge: 0 };
    const failing = { statusCode: results[failed].statusCode, requestCharge: 1 };
    return operations.map((_, i) => (i === failed ? failing : dependent));
  }
  res.statusCode = failed >= 0 ? 207 : 200;
  return operations.map((_, i) => {
    const result = results[i];
    if (!result) return { statusCode: 424, requestCharge: 0 }; // not run: an earlier one failed
    if (result.statusCode >= 400) return { statusCode: result.statusCode, requestCharge: 1 };
    const body = result.body && result.body._etag ? result.body : undefined;
    return { statusCode: result.statusCode, requestCharge: 1, eTag: body && body._etag, resourceBody: body };
  });
};

// (8) Key check. The package accepts any key, so a wrong key could not be tested against it. Cosmos DB signs each
// request with the account key: HMAC-SHA256 over "verb\nresource type\nresource link\ndate\n\n" (verb, type and
// date lower-cased, the link as it is), sent as the URL-encoded "type=master&ver=1.0&sig=<base64>". The key is
// COSMOS_LOCAL_KEY, by default the emulator's public well-known key, which every client of the official
// emulator uses. The check runs before any route, the account read "/" included.
const crypto = require("crypto");

const WELL_KNOWN_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";
const accountKey = Buffer.from(process.env.COSMOS_LOCAL_KEY || WELL_KNOWN_KEY, "base64");
if (accountKey.length === 0) {
  process.stderr.write("local Cosmos DB endpoint: COSMOS_LOCAL_KEY is not a base64 key\n");
  process.exit(2);
}

// The resource type and link a client signs for a path: a path of odd length names a feed (/dbs/a/colls: type
// "colls", link "dbs/a"), one of even length a resource (/dbs/a/colls/b: type "colls", link "dbs/a/colls/b"),
// "/" the account (both empty). Ids are signed decoded; empty segments (a doubled or trailing slash) are none.
function resourceOf(url) {
  const segments = url.split("?")[0].split("/").filter(Boolean).map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch (err) {
      return segment;
    }
  });
  if (segments.length === 0) return { type: "", link: "" };
  // (12) One offer is signed by its rid alone (lower-cased, as every rid-based link; see the payloads below).
  if (segments.length === 2 && segments[0] === "offers") return { type: "offers", link: segments[1] };
  if (segments.length % 2 === 1) {
    return { type: segments[segments.length - 1], link: segments.slice(0, -1).join("/") };
  }
  return { type: segments[segments.length - 2], link: segments.join("/") };
}

const signature = (payload) => crypto.createHmac("sha256", accountKey).update(payload, "utf8").digest();

// The reason to refuse a request, with the payload the server signed (Azure shows it too), or null.
function authorizationRefusal(req) {
  const header = req.headers.authorization;
  if (!header) {
    return "Required Header authorization is missing. Ensure a valid Authorization token is passed.";
  }
  let token;
  try {
    token = decodeURIComponent(header);
  } catch (err) {
    token = header;
  }
  const fields = new Map(
    token.split("&").map((pair) => {
      const at = pair.indexOf("=");
      return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  const { type, link } = resourceOf(req.url);
  // x-ms-date is what clients sign; the Date header stands in only when it is absent, as the service allows.
  const date = String(req.headers["x-ms-date"] || req.headers.date || "").toLowerCase();
  const verb = req.method.toLowerCase();
  // Links by resource id (rid) are signed lower-cased, links by name as they are; both may reach us.
  const payloads = [...new Set([link, link.toLowerCase()])].map(
    (signedLink) => `${verb}\n${type.toLowerCase()}\n${signedLink}\n${date}\n\n`,
  );
  const sent = Buffer.from(fields.get("sig") || "", "base64");
  const matches = (payload) => {
    const expected = signature(payload);
    return sent.length === expected.length && crypto.timingSafeEqual(sent, expected);
  };
  if (fields.get("type") === "master" && fields.get("ver") === "1.0" && payloads.some(matches)) return null;
  return (
    "The input authorization token can't serve the request. The wrong key is being used or the expected " +
    "payload is not built as per the protocol. For more info: https://aka.ms/cosmosdb-tsg-401. Server used " +
    `the following payload to sign: '${payloads[0]}'`
  );
}

function refuseUnauthorized(req, res, message) {
  req.resume(); // drain the body, so that the kept-alive connection can serve the next request
  const body = JSON.stringify({ code: "Unauthorized", message });
  res.writeHead(401, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-ms-activity-id": crypto.randomUUID(),
    "x-ms-request-charge": "0",
  });
  res.end(body);
}

// (10) and (11): container properties, then throughput (its create and delete wrappers go around the property
// checks, so that a refused throughput creates nothing); the offer routes go in front of the package's last.
require("./properties")({ lib, readBody });
const offers = require("./offers")({ lib, readBody });
offers.installRoutes();

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
// (8) The package installs its request handler when it creates the server; put the key check in front of it.
const [serveRequest] = server.listeners("request");
server.removeAllListeners("request");
let arm = null;
const entra = require("./entra")({
  authorizationRefusal,
  refuseUnauthorized,
  onManagementRefused: () => {
    if (arm) arm.stats.dataPlaneManagementRefused += 1;
  },
});
arm = require("./arm")({
  signature,
  resourceOf,
  principalOf: entra.principalOf,
  rolesOf: entra.rolesOf,
  port: () => server.address().port,
});
server.on("request", (req, res) => {
  if (entra.enabled) {
    if (arm.isStats(req)) return arm.serveStats(req, res);
    if (arm.isArm(req)) return arm.handle(req, res);
    if (!entra.admit(req, res)) return;
    serveRequest(req, res);
    return;
  }
  const refusal = authorizationRefusal(req);
  if (refusal) refuseUnauthorized(req, res, refusal);
  else serveRequest(req, res);
});
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
