"use strict";
/*
 * (15) ORDER BY against the indexing policy, as Azure refuses it (the package sorts whatever it is asked).
 *
 * A query with ORDER BY on one property whose path the container does not index (the most specific included or
 * excluded path decides; /a/* covers /a and below, /a/? is /a; an excluded path wins a tie) is answered 400 "The
 * index path corresponding to the specified order-by item is excluded."; one with ORDER BY on several
 * properties without a composite index of the same paths in the same order, with the same directions or all
 * reversed, is answered 400 "The order by query does not have a corresponding composite index that it can be
 * served from." (Azure's texts). ORDER BY on a container with indexing mode none is refused the first way.
 * The package's own composite check (same directions only) is replaced by this one. The query is read with the package's own parser (@zeit/cosmosdb-query); a query it cannot read is left to the
 * package. Not simulated: ORDER BY on system properties (_ts), which Azure serves from the range index.
 */

module.exports = function installOrderBy({ lib, readBody }) {
  const queryPackage = require.resolve("@zeit/cosmosdb-query", { paths: [require.resolve("@vercel/cosmosdb-server")] });
  const parser = require(require("path").join(require("path").dirname(queryPackage), "parser"));

  const pathOf = (node, alias) => {
    const parts = [];
    while (node && node.type === "scalar_member_expression") {
      const key = node.property.type === "identifier" ? node.property.name : node.property.value;
      parts.unshift(String(key));
      node = node.object;
    }
    return node && node.type === "identifier" && node.name === alias ? `/${parts.join("/")}` : null;
  };

  function patterns(policy) {
    const found = [];
    for (const [key, included] of [["includedPaths", true], ["excludedPaths", false]]) {
      for (const entry of policy[key] || []) {
        const text = String(entry.path || "");
        if (text.endsWith("/*")) found.push({ base: text.slice(0, -2), exact: false, included });
        else found.push({ base: text.replace(/\/\?$/, ""), exact: true, included });
      }
    }
    return found;
  }

  function indexed(path, policy) {
    if (String(policy.indexingMode || "consistent").toLowerCase() === "none") return false;
    let best = null;
    let include = false;
    for (const { base, exact, included } of patterns(policy)) {
      const covers = exact ? path === base : base === "" || path === base || path.startsWith(`${base}/`);
      if (!covers) continue;
      const rank = [base.length + (exact ? 1 : 0), included ? 0 : 1];
      if (!best || rank[0] > best[0] || (rank[0] === best[0] && rank[1] > best[1])) {
        best = rank;
        include = included;
      }
    }
    return include;
  }

  function composite(items, policy) {
    return (policy.compositeIndexes || []).some((index) => {
      if (index.length !== items.length || index.some((e, i) => e.path !== items[i].path)) return false;
      const orders = index.map((e, i) => (e.order || "ascending") === items[i].order);
      return orders.every(Boolean) || orders.every((same) => !same);
    });
  }

  function refusal(query, policy) {
    let ast;
    try {
      ast = parser.parse(query);
    } catch (err) {
      return null; // the package answers it as it does
    }
    const body = ast && ast.body;
    if (!body || !body.orderBy || !body.from) return null;
    const source = body.from.source || {};
    const alias = source.alias ? source.alias.name : source.expression && source.expression.expression && source.expression.expression.name;
    const items = body.orderBy.expressions.map((e) => ({
      path: pathOf(e.expression, alias),
      order: String(e.order || "ASC").toUpperCase() === "DESC" ? "descending" : "ascending",
    }));
    if (items.some((i) => i.path === null || i.path.startsWith("/_"))) return null;
    if (items.length === 1 && !indexed(items[0].path, policy)) {
      return "The index path corresponding to the specified order-by item is excluded.";
    }
    if (items.length > 1 && !composite(items, policy)) {
      return "The order by query does not have a corresponding composite index that it can be served from.";
    }
    return null;
  }

  // The package checks composite indexes itself when it sorts, but only with the same directions: Azure serves
  // all-reversed ones too. The rule is applied above, before the query runs; the package's own check is off.
  const helpers = require(require("path").join(require("path").dirname(queryPackage), "helpers"));
  const plainSort = helpers.sort;
  helpers.sort = (collection, getRid, _compositeIndexes, ...orders) => plainSort(collection, getRid, null, ...orders);

  const queryDocuments = lib("handler/query-documents");
  const next = queryDocuments.default;
  queryDocuments.default = async (account, req, res, params) => {
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      return next(account, req, res, params);
    }
    const stored = account.database(params.dbId).collection(params.collId).read();
    const text = body && (typeof body.query === "string" ? body.query : null);
    const refused = stored && text ? refusal(text, stored.indexingPolicy || {}) : null;
    if (refused) {
      res.statusCode = 400;
      return { code: "BadRequest", message: refused };
    }
    return next(account, req, res, params);
  };
};
