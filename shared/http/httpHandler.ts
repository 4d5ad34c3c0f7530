import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { logger, tracer } from '../observability';
import { checkRouteScope } from './accessControl';
import { ProblemError } from './problem';
import { problemResponse, type HttpResponse } from './response';

/** HEAD runs the GET route's handler and answers its status and headers without the body (RFC 9110 §9.3.2). */
function dropBodyOfHead(event: APIGatewayProxyEventV2 | undefined, response: HttpResponse | null | undefined): void {
  if (response && event?.requestContext?.http?.method === 'HEAD') response.body = '';
}

export type RouteHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<HttpResponse>;

/**
 * Wraps a route handler: structured logging with the Lambda context, the route's scope checked
 * (auth=jwt; shared/http/accessControl.ts), and every error answered as problem+json. Known problems keep their status; anything else is a logged 500 that tells
 * the client which request id to report.
 */
export function httpHandler(handle: RouteHandler) {
  return middy<APIGatewayProxyEventV2, HttpResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    // Handled errors become responses, so the segment records the status, not an exception.
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use({
      // Before any work of the route: a caller without its scope gets the 403 and nothing else.
      before: async (request) => checkRouteScope(request.event),
      onError: async (request) => {
        const instance = request.event?.rawPath;
        if (request.error instanceof ProblemError) {
          if (request.error.status >= 500) logger.error('request failed', { error: request.error });
          request.response = problemResponse(request.error, instance);
          dropBodyOfHead(request.event, request.response);
          return;
        }
        const requestId = request.context?.awsRequestId ?? request.event?.requestContext?.requestId;
        logger.error('unhandled error', { error: request.error as Error });
        request.response = problemResponse(
          new ProblemError(500, 'internal-error', `The server failed to handle this request; retry later or report request id ${requestId ?? 'unknown'}.`),
          instance,
        );
        dropBodyOfHead(request.event, request.response);
      },
      after: async (request) => dropBodyOfHead(request.event, request.response),
    })
    .handler(handle);
}
