-- The application's queries (the design's query patterns), judged by `cosmigrate check` against the indexing
-- policy the migrations replay to, at every revision. Each: -- name:, -- container:, then the query.

-- name: providers-in-category
-- container: integration_providers
SELECT * FROM c WHERE c.category = @category

-- name: active-providers-in-category
-- container: integration_providers
SELECT * FROM c WHERE c.category = @category AND c.status = 'active'

-- name: tenant-visible-providers-by-name
-- container: integration_providers
SELECT * FROM c
WHERE c.category = @category AND c.status = 'active' AND c.audience = 'tenant'
ORDER BY c.displayName

-- name: tenant-integrations
-- container: integrations
SELECT * FROM c WHERE c.tenantId = @tenantId ORDER BY c.name

-- name: integration-by-provider-and-name
-- container: integrations
SELECT * FROM c WHERE c.tenantId = @tenantId AND c.providerName = @providerName AND c.name = @name

-- name: connection-for-integration
-- container: integration-connections
SELECT * FROM c
WHERE c.integrationId = @integrationId AND c.scope = @scope AND (@scope != 'user' OR c.userId = @userId)

-- name: user-scoped-connections
-- container: integration-connections
SELECT * FROM c WHERE c.integrationId = @integrationId AND c.scope = 'user' AND c.tenantId = @tenantId

-- name: expired-connections
-- container: integration-connections
SELECT * FROM c WHERE c.status = 'expired' OR (c.oauth.expiresAt != null AND c.oauth.expiresAt < @now)
