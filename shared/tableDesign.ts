/** Key design shared by the CDK stack and the local runtime's table creation. */
export const personaTableDesign = {
  partitionKey: 'id',
  streamViewType: 'NEW_AND_OLD_IMAGES',
} as const;

export const idempotencyTableDesign = {
  partitionKey: 'key',
  timeToLiveAttribute: 'expires_at',
} as const;

/**
 * The tenant index of the persona table (a global secondary index): a tenant's personas are one
 * partition of it, so listing them is a Query, never a scan of other tenants' items. Sparse: only
 * items of a `claim` stage carry `tenant_id`, so single-tenant items cost nothing in it.
 */
export const tenantIndexDesign = {
  indexName: 'tenant-index',
  partitionKey: 'tenant_id',
  sortKey: 'id',
} as const;
