/*
 * Container properties as Azure stores and returns them, and Azure's rules for changing them (server.js
 * correction 10). Required by server.js before the package's routes load.
 *
 * What the package does: it stores a container body as sent (adding an empty geospatialConfig, a lower-case
 * indexingMode and the default composite order) and accepts any replace that keeps the partition key object
 * byte for byte. What Azure does, and this module does too:
 *
 *  - On every create and replace the stored definition gets what the service adds (so reads, lists, queries and
 *    the create/replace responses all show it): indexingPolicy.automatic (true; false for indexingMode "none"),
 *    "/*" in includedPaths when neither list has it and '/"_etag"/?' in excludedPaths (not for mode "none"),
 *    partitionKey.kind "Hash" when absent (partitionKey.version stays as sent: Azure omits it for version 1, and
 *    the Python SDK reads a missing version as 1), uniqueKeyPolicy {"uniqueKeys": []}, conflictResolutionPolicy
 *    {"mode": "LastWriterWins", "conflictResolutionPath": "/_ts", "conflictResolutionProcedure": ""} (an LWW path
 *    left empty becomes "/_ts", a Custom procedure left empty becomes ""), geospatialConfig {"type": "Geography"},
 *    and the links _docs, _sprocs, _triggers, _udfs, _conflicts. computedProperties, vectorEmbeddingPolicy,
 *    fullTextPolicy, indexingPolicy.vectorIndexes and .fullTextIndexes, defaultTtl and analyticalStorageTtl are
 *    stored and returned as sent (Microsoft's SDK tests compare them to what was sent); a null TTL is no TTL.
 *  - Create and replace refuse with 400 what Azure refuses (messages as in Microsoft's SDK tests against the
 *    service where they show them): an invalid conflict resolution policy, vector embeddings with an unknown
 *    dataType or distanceFunction or dimensions outside 1..4096, vector indexes of an unknown type or on a path
 *    that no embedding declares, full-text paths not starting with "/" or in an unsupported language, full-text
 *    indexes without a path or on a path the full-text policy does not list, computed properties without a name
 *    or a query, with a repeated name or more than 20 of them, a defaultTtl other than -1 or > 0, an
 *    analyticalStorageTtl other than -1, 0 or > 0, a geospatialConfig type other than Geography or Geometry.
 *  - Replace (a full definition: what is left out is reset, as Azure does): a different partition key (paths,
 *    kind, version; an absent kind is Hash, an absent version is 1) is 400 "Document collection partition key
 *    cannot be changed."; different unique keys (an absent policy is no unique keys, so leaving out the policy of
 *    a container that has some is a change, as azure-sdk-for-python#40070 shows) are 403 "The unique index cannot
 *    be modified. ..."; a different conflict resolution policy (an absent one is the default) is 400 "Updating
 *    conflict resolution policy is currently not supported."; a changed vector embedding policy is 400 "Paths in
 *    existing embedding policy cannot be modified in Collection Replace.", changed vector indexes 400 "Paths in
 *    existing vector indexing policy cannot be modified in Collection Replace." (both checked after the body's
 *    own validation, so that a replace without the embedding policy fails as on Azure with "... not matching in
 *    Embedding's path."); defaultTtl left out turns TTL off; full-text policy, full-text indexes, computed
 *    properties, geospatialConfig and the rest of the indexing policy change freely.
 *  - Analytical store (docs "Analytical TTL", Synapse Link FAQ): it can be enabled on an existing container (-1
 *    or n > 0); once on, any valid value can follow, and 0 turns it off for good: enabling it again is refused.
 *
 * Not confirmed against the service, and what was chosen:
 *  - Whether Azure adds empty vectorIndexes / fullTextIndexes / compositeIndexes / spatialIndexes arrays to every
 *    indexing policy: not added. Whether Custom conflict resolution returns conflictResolutionPath "": it does here.
 *  - Vector embedding policy and vector indexes: the SDK tests show that existing paths cannot be modified; whether
 *    new ones can be added is not shown (the docs call both immutable). Any change is refused here.
 *  - A replace that leaves out analyticalStorageTtl while the analytical store is on: refused here (400), since
 *    the documented way to turn it off is 0, and refusing makes a tool that forgets to re-send it fail locally
 *    whichever way Azure takes it. The message texts of this rule, of TTL, computed property, geospatialConfig and
 *    path-format refusals are this module's own.
 *  - Whether geospatialConfig may change on replace: allowed here. The account is treated as Synapse Link enabled.
 */
"use strict";

const ETAG_PATH = '/"_etag"/?';
const LAST_WRITER_WINS = "LastWriterWins";
const CUSTOM = "Custom";
const LINKS = { _docs: "docs/", _sprocs: "sprocs/", _triggers: "triggers/", _udfs: "udfs/", _conflicts: "conflicts/" };
const VECTOR_DATA_TYPES = ["float32", "float16", "int8", "uint8"];
const DISTANCE_FUNCTIONS = ["euclidean", "cosine", "dotproduct"];
const VECTOR_INDEX_TYPES = ["flat", "quantizedFlat", "diskANN"];
const MAX_DIMENSIONS = 4096;
const FULL_TEXT_LANGUAGES = ["en-US", "fr-FR", "de-DE", "it-IT", "pt-BR", "pt-PT", "es-ES"];
const MAX_COMPUTED_PROPERTIES = 20;
const GEOSPATIAL_TYPES = ["Geography", "Geometry"];

class Refusal extends Error {
  constructor(statusCode, code, message) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}
const badRequest = (message) => new Refusal(400, "BadRequest", message);
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const list = (value) => (Array.isArray(value) ? value : []);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// -- the shape Azure stores ----------------------------------------------------------------------------------

function indexingPolicy(policy) {
  const shaped = isObject(policy) ? { ...policy } : {};
  const mode = String(shaped.indexingMode || "consistent").toLowerCase();
  shaped.indexingMode = mode;
  if (shaped.automatic === undefined) shaped.automatic = mode !== "none";
  const included = list(shaped.includedPaths).slice();
  const excluded = list(shaped.excludedPaths).slice();
  if (mode !== "none") {
    const paths = [...included, ...excluded].map((entry) => entry && entry.path);
    if (!paths.includes("/*")) included.push({ path: "/*" });
    if (!excluded.some((entry) => entry && entry.path === ETAG_PATH)) excluded.push({ path: ETAG_PATH });
  }
  shaped.includedPaths = included;
  shaped.excludedPaths = excluded;
  return shaped;
}

// The policy as stored: the default when absent, empty parts filled in. Throws a Refusal when invalid.
function conflictResolution(policy) {
  if (policy === undefined || policy === null) {
    return { mode: LAST_WRITER_WINS, conflictResolutionPath: "/_ts", conflictResolutionProcedure: "" };
  }
  if (!isObject(policy)) throw badRequest("One of the specified inputs is invalid");
  const given = policy.mode === undefined || policy.mode === null ? LAST_WRITER_WINS : String(policy.mode);
  const mode = [LAST_WRITER_WINS, CUSTOM].find((known) => known.toLowerCase() === given.toLowerCase());
  const path = policy.conflictResolutionPath || "";
  const procedure = policy.conflictResolutionProcedure || "";
  if (mode === LAST_WRITER_WINS) {
    if (procedure) {
      throw badRequest("LastWriterWins conflict resolution mode should not have conflict resolution procedure set.");
    }
    const resolved = path || "/_ts";
    if (!/^\/[^/]+$/.test(resolved)) {
      throw badRequest(`Invalid path '${resolved}' for last writer wins conflict resolution`);
    }
    return { mode, conflictResolutionPath: resolved, conflictResolutionProcedure: "" };
  }
  if (mode === CUSTOM) {
    if (path) throw badRequest("Custom conflict resolution mode should not have conflict resolution path set.");
    return { mode, conflictResolutionPath: "", conflictResolutionProcedure: procedure };
  }
  throw badRequest(`The conflict resolution mode '${given}' is invalid. Choose between '${LAST_WRITER_WINS}' and '${CUSTOM}'.`);
}

function azureShape(data) {
  const shaped = { ...data, indexingPolicy: indexingPolicy(data.indexingPolicy) };
  if (isObject(data.partitionKey)) shaped.partitionKey = { ...data.partitionKey, kind: data.partitionKey.kind || "Hash" };
  shaped.uniqueKeyPolicy = isObject(data.uniqueKeyPolicy) ? data.uniqueKeyPolicy : { uniqueKeys: [] };
  try {
    shaped.conflictResolutionPolicy = conflictResolution(data.conflictResolutionPolicy);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err; // validated before the store is reached: kept as sent
  }
  shaped.geospatialConfig =
    isObject(data.geospatialConfig) && data.geospatialConfig.type ? data.geospatialConfig : { type: "Geography" };
  for (const ttl of ["defaultTtl", "analyticalStorageTtl"]) if (shaped[ttl] === null) delete shaped[ttl];
  return { ...shaped, ...LINKS };
}

// -- what a create or a replace may carry --------------------------------------------------------------------

const isPath = (path) => typeof path === "string" && /^\/[^/]/.test(path);

function validateVectors(body) {
  const policy = body.vectorEmbeddingPolicy;
  const embeddings = [];
  if (policy !== undefined && policy !== null) {
    if (!isObject(policy) || (policy.vectorEmbeddings !== undefined && !Array.isArray(policy.vectorEmbeddings))) {
      throw badRequest("One of the specified inputs is invalid");
    }
    for (const embedding of list(policy.vectorEmbeddings)) {
      if (!isObject(embedding) || !isPath(embedding.path)) {
        throw badRequest(`The Vector Embedding Policy has an invalid Path: ${isObject(embedding) ? embedding.path : embedding}.`);
      }
      if (embeddings.includes(embedding.path)) {
        throw badRequest(`The Vector Embedding Policy has the path ${embedding.path} more than once.`);
      }
      if (!VECTOR_DATA_TYPES.includes(embedding.dataType)) {
        throw badRequest(`The Vector Embedding Policy has an invalid DataType:${embedding.dataType}. Supported DataTypes are: ${VECTOR_DATA_TYPES.join(", ")}.`);
      }
      const dimensions = embedding.dimensions;
      if (!Number.isInteger(dimensions) || dimensions < 1) {
        throw badRequest(`The Vector Embedding Policy has Dimensions:${dimensions} which is less than the minimum supported value 1.`);
      }
      if (dimensions > MAX_DIMENSIONS) {
        throw badRequest(`The Vector Embedding Policy has Dimensions:${dimensions} which is more than the maximum supported value ${MAX_DIMENSIONS}.`);
      }
      if (!DISTANCE_FUNCTIONS.includes(embedding.distanceFunction)) {
        throw badRequest(`The Vector Embedding Policy has an invalid DistanceFunction:${embedding.distanceFunction}. Supported DistanceFunctions are: ${DISTANCE_FUNCTIONS.join(", ")}.`);
      }
      embeddings.push(embedding.path);
    }
  }
  const indexes = isObject(body.indexingPolicy) ? body.indexingPolicy.vectorIndexes : undefined;
  if (indexes !== undefined && !Array.isArray(indexes)) throw badRequest("One of the specified inputs is invalid");
  for (const index of list(indexes)) {
    if (!isObject(index)) throw badRequest("One of the specified inputs is invalid");
    if (!embeddings.includes(index.path)) {
      throw badRequest(`The Vector Indexing Policy's path::${index.path} not matching in Embedding's path.`);
    }
    if (!VECTOR_INDEX_TYPES.includes(index.type)) throw badRequest(`Index Type::${index.type} is invalid.`);
  }
}

function validateFullText(body) {
  const policy = body.fullTextPolicy;
  const paths = [];
  if (policy !== undefined && policy !== null) {
    if (!isObject(policy) || (policy.fullTextPaths !== undefined && !Array.isArray(policy.fullTextPaths))) {
      throw badRequest("One of the specified inputs is invalid");
    }
    const languages = [policy.defaultLanguage, ...list(policy.fullTextPaths).map((p) => isObject(p) && p.language)];
    for (const language of languages) {
      if (language !== undefined && language !== false && !FULL_TEXT_LANGUAGES.includes(language)) {
        throw badRequest(`The Full Text Policy contains an unsupported language ${language}. Supported languages are: ${FULL_TEXT_LANGUAGES.join(", ")}`);
      }
    }
    for (const entry of list(policy.fullTextPaths)) {
      const path = isObject(entry) ? entry.path : entry;
      if (!isPath(path)) throw badRequest(`The Full Text Policy contains an invalid Path: ${path}`);
      paths.push(path);
    }
  }
  const indexes = isObject(body.indexingPolicy) ? body.indexingPolicy.fullTextIndexes : undefined;
  if (indexes !== undefined && !Array.isArray(indexes)) throw badRequest("One of the specified inputs is invalid");
  list(indexes).forEach((index, i) => {
    if (!isObject(index) || index.path === undefined) {
      throw badRequest(`Missing path in full-text index specification at index (${i})`);
    }
    if (!isPath(index.path)) throw badRequest(`Full-text index specification at index (${i}) contains invalid path`);
    if (!paths.includes(index.path)) {
      throw badRequest(`The path of the Full Text Index ${index.path} does not match the path specified in the Full Text Policy`);
    }
  });
}

function validateComputedProperties(body) {
  const computed = body.computedProperties;
  if (computed === undefined || computed === null) return;
  if (!Array.isArray(computed)) throw badRequest("The computed properties must be a list of {name, query}.");
  if (computed.length > MAX_COMPUTED_PROPERTIES) {
    throw badRequest(`A container can have at most ${MAX_COMPUTED_PROPERTIES} computed properties, not ${computed.length}.`);
  }
  const names = new Set();
  for (const property of computed) {
    if (!isObject(property) || typeof property.name !== "string" || !property.name) {
      throw badRequest("A computed property needs a name.");
    }
    if (typeof property.query !== "string" || !/^\s*select\s+value\s/i.test(property.query)) {
      throw badRequest(`The computed property '${property.name}' needs a query of the form SELECT VALUE <expression> FROM c.`);
    }
    if (names.has(property.name)) throw badRequest(`The computed property '${property.name}' is defined more than once.`);
    names.add(property.name);
  }
}

function validateTtls(body) {
  const ttl = body.defaultTtl;
  if (ttl !== undefined && ttl !== null && !(Number.isInteger(ttl) && (ttl === -1 || ttl > 0))) {
    throw badRequest(`The value of defaultTtl (${JSON.stringify(ttl)}) is invalid: it must be -1 (on, no default expiry) or a number of seconds greater than 0.`);
  }
  const analytical = body.analyticalStorageTtl;
  if (analytical !== undefined && analytical !== null && !(Number.isInteger(analytical) && analytical >= -1)) {
    throw badRequest(`The value of analyticalStorageTtl (${JSON.stringify(analytical)}) is invalid: it must be -1, 0 or a number of seconds greater than 0.`);
  }
}

function validate(body) {
  if (body.conflictResolutionPolicy !== undefined) conflictResolution(body.conflictResolutionPolicy);
  validateVectors(body);
  validateFullText(body);
  validateComputedProperties(body);
  validateTtls(body);
  const geospatial = body.geospatialConfig;
  if (geospatial !== undefined && geospatial !== null && !(isObject(geospatial) && GEOSPATIAL_TYPES.includes(geospatial.type))) {
    throw badRequest(`The geospatialConfig type must be one of ${GEOSPATIAL_TYPES.join(", ")}.`);
  }
}

// -- replace -------------------------------------------------------------------------------------------------

const partitionKeyOf = (pk) =>
  isObject(pk) ? { paths: list(pk.paths), kind: pk.kind || "Hash", version: pk.version === undefined || pk.version === null ? 1 : pk.version } : null;
const uniqueKeysOf = (policy) =>
  list(isObject(policy) ? policy.uniqueKeys : undefined).map((key) => JSON.stringify(list(key && key.paths))).sort();
const analyticalOn = (value) => Number.isInteger(value) && value !== 0;
const vectorIndexesOf = (data) => list(isObject(data.indexingPolicy) ? data.indexingPolicy.vectorIndexes : undefined);
const embeddingsOf = (data) => list(isObject(data.vectorEmbeddingPolicy) ? data.vectorEmbeddingPolicy.vectorEmbeddings : undefined);

// Containers whose analytical store was turned off with 0 (by _rid): it cannot be turned on again.
const analyticalTurnedOff = new Set();

function checkReplace(body, stored) {
  validate(body);
  if (!same(partitionKeyOf(body.partitionKey), partitionKeyOf(stored.partitionKey))) {
    throw badRequest("Document collection partition key cannot be changed.");
  }
  if (!same(uniqueKeysOf(body.uniqueKeyPolicy), uniqueKeysOf(stored.uniqueKeyPolicy))) {
    throw new Refusal(403, "Forbidden", "The unique index cannot be modified. To change the unique index, remove the collection and re-create a new one.");
  }
  if (!same(conflictResolution(body.conflictResolutionPolicy), conflictResolution(stored.conflictResolutionPolicy))) {
    throw badRequest("Updating conflict resolution policy is currently not supported.");
  }
  if (!same(embeddingsOf(body), embeddingsOf(stored))) {
    throw badRequest("Paths in existing embedding policy cannot be modified in Collection Replace.");
  }
  if (!same(vectorIndexesOf(body), vectorIndexesOf(stored))) {
    throw badRequest("Paths in existing vector indexing policy cannot be modified in Collection Replace.");
  }
  const analytical = body.analyticalStorageTtl;
  if (analyticalOn(stored.analyticalStorageTtl) && (analytical === undefined || analytical === null)) {
    throw badRequest(`The analytical store of this container is on (analyticalStorageTtl ${stored.analyticalStorageTtl}): send analyticalStorageTtl with the replace (-1 or seconds), or 0 to turn the analytical store off for good.`);
  }
  if (analyticalOn(analytical) && analyticalTurnedOff.has(stored._rid)) {
    throw badRequest("The analytical store of this container was turned off (analyticalStorageTtl 0) and cannot be turned on again.");
  }
}

module.exports = function installProperties({ lib, readBody }) {
  const Collections = lib("account/collections").default;
  const plainSet = Collections.prototype._set;
  Collections.prototype._set = function set(data) {
    return plainSet.call(this, azureShape(data));
  };

  const refused = (res, err) => {
    if (!(err instanceof Refusal)) throw err;
    res.statusCode = err.statusCode;
    return { code: err.code, message: err.message };
  };

  // Create: validated before the package's own checks and store; refused bodies create nothing.
  const createCollection = lib("handler/create-collection");
  const plainCreate = createCollection.default;
  createCollection.default = async (account, req, res, params) => {
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      res.statusCode = 400;
      return { code: "BadRequest", message: "The request body is not valid JSON." };
    }
    if (isObject(body)) {
      try {
        validate(body);
      } catch (err) {
        return refused(res, err);
      }
    }
    return plainCreate(account, req, res, params);
  };

  // Replace: the package's handler (id, existence, the store's errors) with Azure's rules in front of the store.
  const replaceCollection = lib("handler/replace-collection");
  replaceCollection.default = async (account, req, res, { dbId, collId }) => {
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      res.statusCode = 400;
      return { code: "BadRequest", message: "The request body is not valid JSON." };
    }
    if (!isObject(body) || !body.id) {
      res.statusCode = 400;
      return { code: "BadRequest", message: "missing id" };
    }
    const database = account.database(dbId);
    const stored = database.collection(collId).read();
    if (!stored) {
      res.statusCode = 404;
      return { code: "NotFound", message: "Resource Not Found" };
    }
    if (body.id !== stored.id) {
      // the package would replace whichever container the body names
      res.statusCode = 400;
      return { code: "BadRequest", message: "The id in the body does not match the container the request names." };
    }
    try {
      checkReplace(body, stored);
    } catch (err) {
      return refused(res, err);
    }
    try {
      const replaced = await database.collections.replace(body, stored);
      if (analyticalOn(stored.analyticalStorageTtl) && replaced.analyticalStorageTtl === 0) {
        analyticalTurnedOff.add(replaced._rid);
      }
      return replaced;
    } catch (err) {
      if (err.badRequest) return refused(res, badRequest(err.message));
      if (err.conflict) return refused(res, new Refusal(409, "Conflict", err.message));
      throw err;
    }
  };
};
