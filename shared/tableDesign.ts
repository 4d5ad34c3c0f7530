/** Key design shared by the CDK stack and the local runtime's table creation. */
export const personaTableDesign = {
  partitionKey: 'id',
  streamViewType: 'NEW_AND_OLD_IMAGES',
} as const;

export const idempotencyTableDesign = {
  partitionKey: 'key',
  timeToLiveAttribute: 'expires_at',
} as const;
