"use strict";
/*
 * (13) Entra ID mode: an account with disableLocalAuth, as Azure has it, for the data plane.
 *
 * Turned on by COSMOS_LOCAL_AUTH=entra. Then:
 *  - A request signed with the account key is refused: 401 "Local Authorization is disabled. Use an AAD token to
 *    authorize all requests." (Azure's text).
 *  - A request carries "type=aad&ver=1.0&sig=<JWT>" (what azure-cosmos sends for a TokenCredential). The JWT is
 *    checked as the test token provider (cosmigrate.testing.entra) makes it: HS256 over COSMOS_LOCAL_ENTRA_SECRET,
 *    not expired, audience https://cosmos.azure.com or the account's own scope. Its "oid" is the principal.
 *  - Role assignments are the endpoint's, as on Azure: COSMOS_LOCAL_ENTRA_ROLES is a JSON object of principal ->
 *    list of roles; "data" stands for Cosmos DB Built-in Data Contributor. A principal without it is refused every
 *    data-plane request but the account read with 403, substatus 5301 (Azure's text: "... does not have required
 *    RBAC permissions to perform action [...] on resource [...]").
 *  - Metadata writes are refused whoever asks, as Azure refuses them for any Entra token: creating, replacing or
 *    deleting a database or a container, and any offer request (throughput read, query or replace) answer 403,
 *    substatus 5300: "The given request [POST /dbs/x/colls] cannot be authorized by AAD token in data plane.
 *    Learn more: https://aka.ms/cosmos-native-rbac." Reads of databases and containers are allowed (readMetadata).
 *  - The harness prepares state that an ARM call would make with a key request carrying the header
 *    x-cosmigrate-local-setup: true (a test's stand-in for the management plane; no client sends it).
 * Not simulated: token signature by Entra's keys (the test provider's secret stands in), custom role
 * definitions and scopes narrower than the account, the 5301 "readMetadata" vs "items/*" action distinction.
 */
const crypto = require("crypto");

const enabled = (process.env.COSMOS_LOCAL_AUTH || "key").toLowerCase() === "entra";
const secret = process.env.COSMOS_LOCAL_ENTRA_SECRET || "cosmigrate-local-entra";
let roles = {};
try {
  roles = JSON.parse(process.env.COSMOS_LOCAL_ENTRA_ROLES || "{}");
} catch (err) {
  process.stderr.write("local Cosmos DB endpoint: COSMOS_LOCAL_ENTRA_ROLES is not JSON\n");
  process.exit(2);
}

const base64url = (buffer) => Buffer.from(buffer).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

function verifiedClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const expected = base64url(crypto.createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest());
  const sent = Buffer.from(parts[2]);
  if (sent.length !== expected.length || !crypto.timingSafeEqual(sent, Buffer.from(expected))) return null;
  try {
    return JSON.parse(Buffer.from(parts[1].replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8"));
  } catch (err) {
    return null;
  }
}

function fieldsOf(header) {
  let token;
  try {
    token = decodeURIComponent(header || "");
  } catch (err) {
    token = header || "";
  }
  const fields = new Map();
  for (const pair of token.split("&")) {
    const at = pair.indexOf("=");
    if (at >= 0) fields.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return fields;
}

// Which data-plane requests are metadata writes (refused for any Entra token).
function isMetadataWrite(req) {
  const segments = req.url.split("?")[0].split("/").filter(Boolean);
  if (segments[0] === "offers") return true; // throughput: read, query and replace alike
  const method = req.method.toUpperCase();
  if (method === "GET" || method === "HEAD") return false;
  const kind = segments.length % 2 === 1 ? segments[segments.length - 1] : segments[segments.length - 2];
  if (kind !== "dbs" && kind !== "colls") return false;
  // a query (POST /dbs, POST /dbs/x/colls with the query header) is a read
  return !(method === "POST" && String(req.headers["x-ms-documentdb-isquery"] || "").toLowerCase() === "true");
}

function answer(req, res, status, substatus, code, message) {
  req.resume();
  const body = JSON.stringify({ code, message });
  const headers = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-ms-activity-id": crypto.randomUUID(),
    "x-ms-request-charge": "0",
  };
  if (substatus) headers["x-ms-substatus"] = String(substatus);
  res.writeHead(status, headers);
  res.end(body);
}

module.exports = function installEntra({ authorizationRefusal, refuseUnauthorized, onManagementRefused = () => {} }) {
  // The principal of an ARM request ("Authorization: Bearer <token>"), or null for a missing or bad token.
  function principalOf(req) {
    const header = String(req.headers.authorization || "");
    const claims = header.startsWith("Bearer ") ? verifiedClaims(header.slice(7)) : null;
    const now = Math.floor(Date.now() / 1000);
    return claims && Number(claims.exp) > now ? String(claims.oid || "") : null;
  }
  const rolesOf = (principal) => (Array.isArray(roles[principal]) ? roles[principal] : []);

  // True when the request may go on; otherwise it has been answered.
  function admit(req, res) {
    const fields = fieldsOf(req.headers.authorization);
    if (fields.get("type") === "master") {
      if (String(req.headers["x-cosmigrate-local-setup"] || "") === "true") {
        const refusal = authorizationRefusal(req);
        if (refusal) refuseUnauthorized(req, res, refusal);
        return !refusal;
      }
      answer(req, res, 401, 0, "Unauthorized", "Local Authorization is disabled. Use an AAD token to authorize all requests.");
      return false;
    }
    const claims = fields.get("type") === "aad" ? verifiedClaims(fields.get("sig") || "") : null;
    const now = Math.floor(Date.now() / 1000);
    if (!claims || !(Number(claims.exp) > now)) {
      answer(req, res, 401, 0, "Unauthorized", "The AAD token is missing, invalid or expired. Acquire a new token from Microsoft Entra ID.");
      return false;
    }
    const principal = String(claims.oid || "");
    const path = req.url.split("?")[0];
    const granted = Array.isArray(roles[principal]) ? roles[principal] : [];
    if (path !== "/" && !granted.includes("data")) {
      answer(req, res, 403, 5301, "Forbidden",
        `Request blocked by Auth local : Request is blocked because principal [${principal}] does not have required RBAC permissions to perform action [Microsoft.DocumentDB/databaseAccounts/readMetadata] on resource [/]. Learn more: https://aka.ms/cosmos-native-rbac.`);
      return false;
    }
    if (isMetadataWrite(req)) {
      onManagementRefused();
      answer(req, res, 403, 5300, "Forbidden",
        `The given request [${req.method.toUpperCase()} ${path}] cannot be authorized by AAD token in data plane. Learn more: https://aka.ms/cosmos-native-rbac.`);
      return false;
    }
    return true;
  }
  return { enabled, admit, principalOf, rolesOf };
};
