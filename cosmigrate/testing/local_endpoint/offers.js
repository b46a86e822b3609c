/*
 * Throughput (offers) for the local endpoint (server.js correction 11). The package has no /offers route, so
 * every throughput call of a client failed with "no route". Required by server.js before the package's routes
 * load; its routes are put in front of the package's at the end (installRoutes).
 *
 * What it does, as Azure does (REST docs "Offers", "Replace an Offer", "Get an Offer", "Querying Offers"; the
 * autoscale FAQ; the rules azure-cosmos 4.17 relies on):
 *  - Creating a database or a container with x-ms-offer-throughput: N (manual) or
 *    x-ms-cosmos-offer-autopilot-settings: {"maxThroughput": M[, "autoUpgradePolicy": ...]} (autoscale) creates its
 *    offer: {id, _rid (4 characters, as Azure's), _self "offers/<rid>/", _etag, _ts, offerVersion "V2", offerType
 *    "Invalid", resource = the owner's _self, offerResourceId = the owner's _rid, content}. content is
 *    {"offerThroughput": N} or, for autoscale, {"offerThroughput": M/10 (the idle autoscaled value),
 *    "offerAutopilotSettings": {"maxThroughput": M[, "autoUpgradePolicy": ...]}}. Both headers at once, or values
 *    out of range, are 400 and create nothing. A container created without throughput has no offer of its own
 *    (in a database with shared throughput it uses the database's); deleting a container or a database deletes
 *    its offers.
 *  - GET /offers (list), POST /offers with a query (the SDK's "SELECT * FROM root r WHERE r.resource=@link"; any
 *    query the package's engine runs, with paging), GET /offers/{rid}, PUT /offers/{rid}; 404 for an unknown rid;
 *    If-Match on PUT (412 when stale). GET and PUT of one offer answer x-ms-cosmos-min-throughput and
 *    x-ms-offer-replace-pending: false; a query does not (as Azure: the .NET SDK reads the minimum with a GET).
 *  - Limits. Manual: at least the minimum, MAX(400, highest RU/s ever provisioned / 100, for a database
 *    400 + 100 per container beyond 25 that shares it), at most 1,000,000, in steps of 100. Autoscale max: at
 *    least MAX(1000, highest RU/s ever provisioned / 10, for a database 1000 + 1000 per container beyond 25),
 *    at most 1,000,000, in steps of 1000. Below the minimum: 400 "Requested throughput N is less than required
 *    minimum throughput M" (the service's text in Microsoft's SDK tests); off-step or above the maximum: 400 "The
 *    offer should have valid throughput values between M and 1000000 inclusive in increments of 100" (or 1000).
 *    Storage, which also raises the minimum on Azure (1 RU/s per GB, 10 per GB for autoscale), counts as 0 here.
 *  - Switching mode is not a replace: a PUT whose content changes the mode without the header is 400 (for manual
 *    to autoscale with Azure's text "x-ms-cosmos-migrate-offer-to-autopilot must be supplied and offercontent
 *    must not contain autopilotSettings for migration from manual throughput to autoscale."). A PUT of the offer
 *    with x-ms-cosmos-migrate-offer-to-autopilot: true makes it autoscale with max = MAX(1000, current RU/s,
 *    highest ever / 10) rounded up to a multiple of 1000 (the FAQ's formula, storage counted as 0); one with
 *    x-ms-cosmos-migrate-offer-to-manual-throughput: true makes it manual at the current autoscale max (the FAQ:
 *    "The initial manual provisioned throughput is equal to the current autoscale maximum RU/s"). Either header
 *    on an offer already in that mode, both at once, or autopilot settings in the content of a migration to
 *    autoscale: 400. The Python SDK sends neither header.
 *
 * Not confirmed against the service, and what was chosen:
 *  - The FAQ rounds the migrated autoscale max "to the nearest 1,000"; rounded up here, so it is never below the
 *    manual RU/s it replaces. The minimum manual RU/s is rounded up to a multiple of 100.
 *  - x-ms-cosmos-min-throughput of an autoscale offer: the lowest autoscale max it may be given (manual offers:
 *    the lowest RU/s).
 *  - A PUT of an autoscale offer whose content changes offerThroughput but not the max (what the SDK's
 *    replace_throughput(int) sends for an autoscale container): 400 here, not silently ignored. The offer body
 *    carries only the content fields above (Azure adds others, e.g. offerIsRUPerMinuteThroughputEnabled).
 *  - The 400 texts other than the three quoted above are this module's own. Nothing is ever pending: a replace
 *    takes effect at once, where Azure may take hours for a large scale-up.
 *  - Resource _self links keep the package's form ("/dbs/<rid>/colls/<rid>", Azure's is "dbs/<rid>/colls/<rid>/"),
 *    so an offer's resource is what the owner's _self is here, which is what clients query by.
 */
"use strict";

const crypto = require("crypto");

const MANUAL_HEADER = "x-ms-offer-throughput";
const AUTOSCALE_HEADER = "x-ms-cosmos-offer-autopilot-settings";
const TO_AUTOSCALE = "x-ms-cosmos-migrate-offer-to-autopilot";
const TO_MANUAL = "x-ms-cosmos-migrate-offer-to-manual-throughput";
const MIN_THROUGHPUT = "x-ms-cosmos-min-throughput";
const REPLACE_PENDING = "x-ms-offer-replace-pending";
const MAX_THROUGHPUT = 1000000;
const SHARED_CONTAINERS_INCLUDED = 25;

class Refusal extends Error {
  constructor(statusCode, code, message) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}
const badRequest = (message) => new Refusal(400, "BadRequest", message);
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const ceilTo = (value, step) => Math.ceil(value / step) * step;
const now = () => Math.floor(Date.now() / 1000);

module.exports = function installOffers({ lib, readBody }) {
  const trueHeader = lib("true-header").default;
  const readItems = lib("handler/_read-items").default;
  const queryPackage = require.resolve("@zeit/cosmosdb-query", { paths: [require.resolve("@vercel/cosmosdb-server")] });
  const compileQuery = require(queryPackage).default;

  // offer _rid -> { offer (the body clients see), mode, throughput | max, autoUpgradePolicy, highest, owner }
  const offers = new Map();
  const offerOf = new Map(); // owner _rid -> offer _rid
  let ridCount = 0;

  // Offer rids are 3 bytes in base64 (4 characters, as Azure's); those with "+" or "/" are skipped so that the
  // rid is a plain path segment.
  function newRid() {
    for (;;) {
      ridCount += 1;
      const bytes = Buffer.alloc(3);
      bytes.writeUIntLE(ridCount, 0, 3);
      const rid = bytes.toString("base64");
      if (!/[+/]/.test(rid)) return rid;
    }
  }

  // Containers of a database that use its shared throughput (no offer of their own).
  function sharingContainers(account, databaseRid) {
    const database = account.database(databaseRid);
    if (!database.read()) return 0;
    let count = 0;
    for (const item of database.collections._data.values()) {
      const collection = item.read();
      if (collection && !offerOf.has(collection._rid)) count += 1;
    }
    return count;
  }

  function minimum(account, state, mode) {
    const beyond = state.owner.kind === "database"
      ? Math.max(sharingContainers(account, state.owner.rid) - SHARED_CONTAINERS_INCLUDED, 0) : 0;
    if (mode === "manual") return Math.max(400, ceilTo(state.highest / 100, 100), 400 + beyond * 100);
    return Math.max(1000, ceilTo(state.highest / 10, 1000), 1000 + beyond * 1000);
  }

  // Why `value` cannot be the new RU/s (manual) or max (autoscale) of `state`, or null.
  function refusal(account, state, mode, value) {
    const least = minimum(account, state, mode);
    const step = mode === "manual" ? 100 : 1000;
    if (!Number.isInteger(value)) {
      return `The offer throughput '${JSON.stringify(value)}' is not a whole number of RU/s.`;
    }
    if (value < least) return `Requested throughput ${value} is less than required minimum throughput ${least}`;
    if (value > MAX_THROUGHPUT || value % step !== 0) {
      return `The offer should have valid throughput values between ${least} and ${MAX_THROUGHPUT} inclusive in increments of ${step}.`;
    }
    return null;
  }

  function content(state) {
    if (state.mode === "manual") return { offerThroughput: state.throughput };
    const settings = { maxThroughput: state.max };
    if (state.autoUpgradePolicy !== undefined) settings.autoUpgradePolicy = state.autoUpgradePolicy;
    return { offerThroughput: state.max / 10, offerAutopilotSettings: settings };
  }

  // A new version of the offer body: new content, ETag and timestamp.
  function publish(state) {
    state.highest = Math.max(state.highest, state.mode === "manual" ? state.throughput : state.max);
    const rid = state.offer._rid;
    state.offer = {
      id: rid,
      _rid: rid,
      _self: `offers/${rid}/`,
      _etag: `"${crypto.randomUUID()}"`,
      _ts: now(),
      offerVersion: "V2",
      offerType: "Invalid",
      resource: state.owner.self,
      offerResourceId: state.owner.rid,
      content: content(state),
    };
  }

  // -- throughput asked for on create ------------------------------------------------------------------------

  // The throughput a create asks for ({mode, throughput | max, autoUpgradePolicy}), or null. Throws a Refusal.
  function requested(req) {
    const manual = req.headers[MANUAL_HEADER];
    const autoscale = req.headers[AUTOSCALE_HEADER];
    if (manual !== undefined && autoscale !== undefined) {
      throw badRequest(`Specify either ${MANUAL_HEADER} (manual throughput) or ${AUTOSCALE_HEADER} (autoscale), not both.`);
    }
    if (manual !== undefined) {
      const throughput = Number(manual);
      return { mode: "manual", throughput: String(manual).trim() === "" ? NaN : throughput };
    }
    if (autoscale === undefined) return null;
    let settings;
    try {
      settings = JSON.parse(autoscale);
    } catch (err) {
      settings = undefined;
    }
    if (!isObject(settings) || settings.maxThroughput === undefined) {
      throw badRequest(`${AUTOSCALE_HEADER} must be a JSON object with maxThroughput.`);
    }
    return { mode: "autoscale", max: settings.maxThroughput, autoUpgradePolicy: settings.autoUpgradePolicy };
  }

  const newState = (owner, wanted) => ({ ...wanted, highest: 0, owner, offer: { _rid: newRid() } });

  function check(account, state) {
    const why = refusal(account, state, state.mode, state.mode === "manual" ? state.throughput : state.max);
    if (why) throw badRequest(why);
  }

  function addOffer(state) {
    publish(state);
    offers.set(state.offer._rid, state);
    offerOf.set(state.owner.rid, state.offer._rid);
  }

  function dropOffer(ownerRid) {
    const rid = offerOf.get(ownerRid);
    if (rid === undefined) return;
    offerOf.delete(ownerRid);
    offers.delete(rid);
  }

  const refused = (res, err) => {
    if (!(err instanceof Refusal)) throw err;
    res.statusCode = err.statusCode;
    return { code: err.code, message: err.message };
  };

  // A create handler that also creates the offer the request asks for: checked before anything is created, added
  // once the database or container is (its owner: kind, rid, _self).
  function withOffer(moduleName, kind) {
    const handler = lib(moduleName);
    const plain = handler.default;
    handler.default = async (account, req, res, params) => {
      await readBody(req).catch(() => undefined); // drained now; the handler answers a bad body itself
      let state = null;
      try {
        const wanted = requested(req);
        if (wanted) {
          state = newState({ kind }, wanted);
          check(account, state);
        }
      } catch (err) {
        return refused(res, err);
      }
      const created = await plain(account, req, res, params);
      if (state && res.statusCode === 201 && created && created._rid) {
        state.owner.rid = created._rid;
        state.owner.self = created._self;
        addOffer(state);
      }
      return created;
    };
  }
  withOffer("handler/create-database", "database");
  withOffer("handler/create-collection", "collection");

  // Deletes drop the offers of what they delete.
  const deleteCollection = lib("handler/delete-collection");
  const plainDeleteCollection = deleteCollection.default;
  deleteCollection.default = async (account, req, res, params) => {
    const collection = account.database(params.dbId).collection(params.collId).read();
    const result = await plainDeleteCollection(account, req, res, params);
    if (res.statusCode === 204 && collection) dropOffer(collection._rid);
    return result;
  };
  const deleteDatabase = lib("handler/delete-database");
  const plainDeleteDatabase = deleteDatabase.default;
  deleteDatabase.default = async (account, req, res, params) => {
    const database = account.database(params.dbId);
    const data = database.read();
    const owners = data ? [data._rid, ...[...database.collections._data.values()].map((c) => (c.read() || {})._rid)] : [];
    const result = await plainDeleteDatabase(account, req, res, params);
    if (res.statusCode === 204) owners.forEach(dropOffer);
    return result;
  };

  // -- the /offers routes ------------------------------------------------------------------------------------

  const notFound = (res) => {
    res.statusCode = 404;
    return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
  };

  function answerOne(account, res, state) {
    res.setHeader(MIN_THROUGHPUT, String(minimum(account, state, state.mode)));
    res.setHeader(REPLACE_PENDING, "false");
    return state.offer;
  }

  async function feed(req, res, query, parameters) {
    const all = [...offers.values()].map((state) => state.offer);
    const page = await readItems(req, res, "Offers", async ({ continuation, maxItemCount }) =>
      compileQuery(query).exec(all, { parameters, maxItemCount, continuation }),
    );
    return page && Array.isArray(page.Offers) ? { _rid: "", ...page } : page;
  }

  const readOffers = (account, req, res) => feed(req, res, "SELECT * FROM root");

  async function queryOffers(account, req, res) {
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      body = undefined;
    }
    if (!isObject(body) || typeof body.query !== "string") {
      res.statusCode = 400;
      return { code: "BadRequest", message: "A query needs a body {\"query\": ..., \"parameters\": [...]}." };
    }
    return feed(req, res, body.query, body.parameters);
  }

  function readOffer(account, req, res, { offerId }) {
    const state = offers.get(offerId);
    return state ? answerOne(account, res, state) : notFound(res);
  }

  // The state a PUT asks for: {mode, throughput | max, autoUpgradePolicy}. Throws a Refusal.
  function replacement(account, req, state, body) {
    if (!isObject(body) || !isObject(body.content)) throw badRequest("The offer needs its content.");
    if (body.offerVersion !== undefined && body.offerVersion !== "V2") {
      throw badRequest(`Only offerVersion V2 (provisioned throughput) is supported, not ${body.offerVersion}.`);
    }
    for (const key of ["resource", "offerResourceId"]) {
      if (body[key] !== undefined && body[key] !== state.offer[key]) throw badRequest(`The offer's ${key} cannot be changed.`);
    }
    const toAutoscale = trueHeader(req, TO_AUTOSCALE);
    const toManual = trueHeader(req, TO_MANUAL);
    const settings = body.content.offerAutopilotSettings;
    if (toAutoscale && toManual) throw badRequest(`Send either ${TO_AUTOSCALE} or ${TO_MANUAL}, not both.`);
    if (toAutoscale) {
      if (state.mode !== "manual") throw badRequest(`${TO_AUTOSCALE} migrates an offer with manual throughput; this one is autoscale.`);
      if (settings !== undefined) {
        throw badRequest(`${TO_AUTOSCALE} must be supplied and offercontent must not contain autopilotSettings for migration from manual throughput to autoscale.`);
      }
      const max = Math.max(minimum(account, state, "autoscale"), ceilTo(state.throughput, 1000));
      return { mode: "autoscale", max: Math.min(max, MAX_THROUGHPUT), autoUpgradePolicy: undefined };
    }
    if (toManual) {
      if (state.mode !== "autoscale") throw badRequest(`${TO_MANUAL} migrates an autoscale offer; this one has manual throughput.`);
      return { mode: "manual", throughput: state.max };
    }
    if (state.mode === "manual") {
      if (settings !== undefined) {
        throw badRequest(`${TO_AUTOSCALE} must be supplied and offercontent must not contain autopilotSettings for migration from manual throughput to autoscale.`);
      }
      return { mode: "manual", throughput: body.content.offerThroughput };
    }
    if (!isObject(settings)) {
      throw badRequest(`${TO_MANUAL} must be supplied for migration from autoscale to manual throughput; to change an autoscale offer, change content.offerAutopilotSettings.maxThroughput.`);
    }
    const current = state.offer.content.offerThroughput;
    const offered = body.content.offerThroughput;
    if (offered !== undefined && offered !== current && settings.maxThroughput === state.max) {
      throw badRequest(`The offer is autoscale: its offerThroughput (${current}) follows the load; change content.offerAutopilotSettings.maxThroughput, or migrate it to manual throughput with ${TO_MANUAL}.`);
    }
    return { mode: "autoscale", max: settings.maxThroughput, autoUpgradePolicy: settings.autoUpgradePolicy };
  }

  async function replaceOffer(account, req, res, { offerId }) {
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      body = undefined;
    }
    const state = offers.get(offerId);
    if (!state) return notFound(res);
    const ifMatch = req.headers["if-match"];
    if (ifMatch !== undefined && ifMatch !== "*" && ifMatch !== state.offer._etag) {
      res.statusCode = 412;
      return { code: "PreconditionFailed", message: "Operation cannot be performed because one of the specified precondition is not met." };
    }
    try {
      const next = replacement(account, req, state, body);
      const why = refusal(account, state, next.mode, next.mode === "manual" ? next.throughput : next.max);
      if (why) throw badRequest(why);
      Object.assign(state, next);
      if (next.mode === "manual") delete state.max;
      else delete state.throughput;
    } catch (err) {
      return refused(res, err);
    }
    publish(state);
    res.statusCode = 200;
    return answerOne(account, res, state);
  }

  return {
    // The /offers routes, in front of the package's. Call it last: loading the routes table captures the
    // handlers as they are then.
    installRoutes() {
      const route = lib("router").default({
        GET: { "/offers/:offerId": readOffer, "/offers": readOffers },
        POST_QUERY: { "/offers": queryOffers },
        PUT: { "/offers/:offerId": replaceOffer },
      });
      const routes = lib("routes");
      const plainRoute = routes.default;
      routes.default = (req) => route(req) || plainRoute(req);
    },
  };
};
