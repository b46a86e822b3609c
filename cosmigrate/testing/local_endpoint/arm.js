"use strict";
/*
 * (14) The Azure Resource Manager routes the management client (azure-mgmt-cosmosdb) uses for SQL databases,
 * containers and their throughput, served in Entra ID mode beside the data plane and backed by the same store.
 *
 * Routes, under /subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.DocumentDB/databaseAccounts/{a}:
 *   PUT, GET, DELETE  /sqlDatabases/{db}                     (PUT: properties.resource.id, properties.options
 *                                                              throughput | autoscaleSettings.maxThroughput)
 *   PUT, GET, DELETE  /sqlDatabases/{db}/containers/{c}      (PUT: properties.resource is the container's
 *                                                              definition, as the data plane takes it; a PUT of
 *                                                              an existing container replaces it)
 *   GET, PUT          …/throughputSettings/default           (of a database or a container)
 *   POST              …/throughputSettings/default/migrateToAutoscale | migrateToManualThroughput
 * A write is carried out at once through the data plane of this same server (a key request, so every rule of
 * properties.js and offers.js applies: a refused change is refused here too, with its message), then answered as
 * a long-running operation: 202 with Azure-AsyncOperation (and Location) headers; the operation answers
 * InProgress on its first poll and Succeeded (or Failed, with the error) after, with Retry-After: 0.
 * Authorization: "Bearer <token>" from the test token provider; a principal without the "arm" role (standing
 * for a role with Microsoft.DocumentDB/databaseAccounts/sqlDatabases/* actions, such as Cosmos DB Operator) is
 * answered 403 AuthorizationFailed naming the action, as ARM does. GET /_local/stats (no authorization) counts
 * ARM requests and management requests refused on the data plane, for tests.
 * Not simulated: resource groups and accounts (any names are accepted), ARM's own throttling, provisioning
 * states other than Succeeded, tags and locations.
 */
const crypto = require("crypto");
const https = require("https");

const BASE = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.DocumentDB\/databaseAccounts\/([^/]+)(\/.*)?$/i;
const stats = { arm: 0, armWrites: {}, dataPlaneManagementRefused: 0 };
const operations = new Map();

function send(res, status, body, headers = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

const armError = (res, status, code, message) => send(res, status, { error: { code, message } });

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(text ? JSON.parse(text) : {});
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

module.exports = function installArm({ signature, resourceOf, principalOf, rolesOf, port }) {
  // A key request to this server's own data plane (with the setup header entra.js lets through).
  function dataPlane(method, path, body, headers = {}) {
    const { type, link } = resourceOf(path);
    const date = new Date().toUTCString();
    const payload = `${method.toLowerCase()}\n${type.toLowerCase()}\n${link}\n${date.toLowerCase()}\n\n`;
    const auth = encodeURIComponent(`type=master&ver=1.0&sig=${signature(payload).toString("base64")}`);
    const text = body === undefined ? "" : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: "127.0.0.1", port: port(), path, method, rejectUnauthorized: false,
          headers: {
            authorization: auth, "x-ms-date": date, "x-ms-version": "2020-07-15", "content-type": "application/json",
            "content-length": Buffer.byteLength(text), "x-cosmigrate-local-setup": "true", ...headers,
          },
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const raw = Buffer.concat(chunks).toString("utf8");
            let parsed = {};
            try {
              parsed = raw ? JSON.parse(raw) : {};
            } catch (err) {
              parsed = { message: raw };
            }
            resolve({ status: res.statusCode, body: parsed });
          });
        },
      );
      req.on("error", reject);
      req.end(text);
    });
  }

  const offerHeaders = (options) => {
    if (!options) return {};
    if (options.autoscaleSettings && options.autoscaleSettings.maxThroughput) {
      return { "x-ms-cosmos-offer-autopilot-settings": JSON.stringify({ maxThroughput: options.autoscaleSettings.maxThroughput }) };
    }
    if (options.throughput) return { "x-ms-offer-throughput": String(options.throughput) };
    return {};
  };

  async function offerOf(ownerPath) {
    const owner = await dataPlane("GET", ownerPath);
    if (owner.status !== 200) return { error: owner };
    const list = await dataPlane("GET", "/offers");
    const offer = (list.body.Offers || []).find((o) => o.offerResourceId === owner.body._rid);
    return { offer, owner: owner.body };
  }

  function throughputBody(id, offer, minimum) {
    const content = offer.content || {};
    const auto = content.offerAutopilotSettings && content.offerAutopilotSettings.maxThroughput;
    const resource = auto ? { autoscaleSettings: { maxThroughput: auto } } : { throughput: content.offerThroughput };
    return { id, name: "default", type: "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/throughputSettings",
      properties: { resource: { ...resource, minimumThroughput: String(minimum || 400), offerReplacePending: "false" } } };
  }

  const wrap = (id, kind, resource) => ({ id, name: resource.id, type: kind, properties: { resource } });

  // Answer a write as a long-running operation (the effect has happened; the operation reports it).
  function accepted(req, res, result, location) {
    const id = crypto.randomUUID();
    operations.set(id, { polls: 0, result });
    const host = `https://${req.headers.host}`;
    const status = `${host}/subscriptions/local/providers/Microsoft.DocumentDB/locations/local/operationsStatus/${id}?api-version=2025-04-15`;
    send(res, 202, undefined, {
      "azure-asyncoperation": status,
      location: location ? `${host}${location}?api-version=2025-04-15` : status,
      "retry-after": "0",
    });
  }

  function failed(res, answer) {
    const code = answer.status === 403 ? "Forbidden" : answer.status === 404 ? "NotFound" : answer.status === 409 ? "Conflict" : "BadRequest";
    return armError(res, answer.status >= 400 ? answer.status : 400, code, (answer.body && answer.body.message) || "refused");
  }

  async function handle(req, res) {
    stats.arm += 1;
    const path = req.url.split("?")[0];
    const status = path.match(/\/operationsStatus\/([^/]+)$/);
    const principal = principalOf(req);
    if (principal === null) return armError(res, 401, "InvalidAuthenticationToken", "The access token is missing or invalid.");
    if (status) {
      const operation = operations.get(status[1]);
      if (!operation) return armError(res, 404, "NotFound", "no such operation");
      operation.polls += 1;
      if (operation.polls === 1) return send(res, 200, { status: "InProgress" }, { "retry-after": "0" });
      return send(res, 200, operation.result.error ? { status: "Failed", error: operation.result.error } : { status: "Succeeded" });
    }
    const match = path.match(BASE);
    if (!match) return armError(res, 404, "NotFound", `no ARM route for ${path}`);
    const rest = (match[4] || "").split("/").filter(Boolean).map(decodeURIComponent);
    const method = req.method.toUpperCase();
    const write = method !== "GET";
    const kind = rest.length >= 3 && rest[2] === "containers" ? "containers" : "sqlDatabases";
    const action = `Microsoft.DocumentDB/databaseAccounts/${kind === "containers" ? "sqlDatabases/containers" : "sqlDatabases"}${rest.includes("throughputSettings") ? "/throughputSettings" : ""}/${method === "DELETE" ? "delete" : write ? "write" : "read"}`;
    if (!rolesOf(principal).includes("arm")) {
      return armError(res, 403, "AuthorizationFailed",
        `The client '${principal}' with object id '${principal}' does not have authorization to perform action '${action}' over scope '${path}' or the scope is invalid. If access was recently granted, please refresh your credentials.`);
    }
    if (write) stats.armWrites[action] = (stats.armWrites[action] || 0) + 1;
    if (rest[0] !== "sqlDatabases" || !rest[1]) return armError(res, 404, "NotFound", `no ARM route for ${path}`);
    const db = rest[1];
    const dbPath = `/dbs/${encodeURIComponent(db)}`;
    const container = rest[2] === "containers" ? rest[3] : undefined;
    const ownerPath = container ? `${dbPath}/colls/${encodeURIComponent(container)}` : dbPath;
    const tail = rest.slice(container ? 4 : 2);
    const body = method === "PUT" || method === "POST" ? await readJson(req).catch(() => null) : {};
    if (body === null) return armError(res, 400, "BadRequest", "The request body is not valid JSON.");
    const armPath = path;

    if (tail[0] === "throughputSettings") {
      const found = await offerOf(ownerPath);
      if (found.error) return failed(res, found.error);
      if (!found.offer) return armError(res, 404, "NotFound", `${container ? "container" : "database"} ${container || db} has no throughput settings of its own`);
      const offerPath = `/offers/${found.offer._rid || found.offer.id}`;
      if (method === "GET") {
        const one = await dataPlane("GET", offerPath);
        return send(res, 200, throughputBody(armPath, one.body, one.body.content && one.body.content.offerMinimumThroughputParameters));
      }
      const settingsPath = armPath.replace(/\/(migrateToAutoscale|migrateToManualThroughput)$/, "");
      let answer;
      if (tail[2] === "migrateToAutoscale" || tail[2] === "migrateToManualThroughput") {
        const header = tail[2] === "migrateToAutoscale" ? "x-ms-cosmos-migrate-offer-to-autopilot" : "x-ms-cosmos-migrate-offer-to-manual-throughput";
        const content = { ...found.offer.content };
        delete content.offerAutopilotSettings;
        if (tail[2] === "migrateToAutoscale") delete content.offerThroughput;
        answer = await dataPlane("PUT", offerPath, { ...found.offer, content }, { [header]: "true" });
      } else {
        const wanted = (body.properties && body.properties.resource) || {};
        const content = { ...found.offer.content };
        if (wanted.autoscaleSettings) content.offerAutopilotSettings = { ...(content.offerAutopilotSettings || {}), maxThroughput: wanted.autoscaleSettings.maxThroughput };
        if (wanted.throughput !== undefined) content.offerThroughput = wanted.throughput;
        answer = await dataPlane("PUT", offerPath, { ...found.offer, content });
      }
      if (answer.status >= 300) return failed(res, answer);
      return accepted(req, res, {}, settingsPath);
    }
    if (tail.length) return armError(res, 404, "NotFound", `no ARM route for ${path}`);

    if (method === "GET") {
      const answer = await dataPlane("GET", ownerPath);
      if (answer.status !== 200) return failed(res, answer);
      return send(res, 200, wrap(armPath, `Microsoft.DocumentDB/databaseAccounts/${kind}`, answer.body));
    }
    if (method === "DELETE") {
      const answer = await dataPlane("DELETE", ownerPath);
      if (answer.status >= 300 && answer.status !== 404) return failed(res, answer);
      return accepted(req, res, {});
    }
    if (method === "PUT") {
      const properties = body.properties || {};
      const resource = properties.resource || {};
      const exists = (await dataPlane("GET", ownerPath)).status === 200;
      let answer;
      // ARM's PUT is create-or-update: one that loses a race to create (409 from the data plane) updates instead
      if (!container) {
        answer = exists ? { status: 200 } : await dataPlane("POST", "/dbs", { id: db }, offerHeaders(properties.options));
        if (answer.status === 409) answer = { status: 200 };
      } else {
        if (!exists) {
          answer = await dataPlane("POST", `${dbPath}/colls`, { ...resource, id: container }, offerHeaders(properties.options));
        }
        if (exists || answer.status === 409) answer = await dataPlane("PUT", ownerPath, { ...resource, id: container });
      }
      if (answer.status >= 300) return failed(res, answer);
      return accepted(req, res, {});
    }
    return armError(res, 405, "MethodNotAllowed", `${method} is not served on ${path}`);
  }

  return {
    stats,
    isArm: (req) => req.url.startsWith("/subscriptions/"),
    isStats: (req) => req.url.split("?")[0] === "/_local/stats",
    serveStats: (req, res) => {
      req.resume();
      send(res, 200, stats);
    },
    handle: (req, res) => handle(req, res).catch((err) => armError(res, 500, "InternalServerError", String(err && err.message))),
  };
};
