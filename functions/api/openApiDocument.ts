import { httpHandler } from '../../shared/http/httpHandler';
import { jsonResponse } from '../../shared/http/response';
import { openApiDocument } from '../../shared/openapi/openApiDocument';

export const handler = httpHandler(async () => jsonResponse(200, openApiDocument(), { 'cache-control': 'public, max-age=300' }));
