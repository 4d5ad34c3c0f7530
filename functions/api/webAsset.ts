import { httpHandler } from '../../shared/http/httpHandler';
import { header } from '../../shared/http/request';
import { webAssetResponse } from '../../shared/http/webAssets';

export const handler = httpHandler(async (event) =>
  webAssetResponse(event.pathParameters?.file ?? '', {
    ifNoneMatch: header(event, 'if-none-match'),
    acceptEncoding: header(event, 'accept-encoding'),
  }),
);
