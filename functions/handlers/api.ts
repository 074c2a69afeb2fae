import type { LambdaEvent } from 'hono/aws-lambda';
import { handle } from 'hono/aws-lambda';
import { createApiApp } from '../api/app.js';
import { awsApiDeps } from './aws-api-deps.js';

let app: Promise<ReturnType<typeof handle>> | undefined;

/** The tenant and control-plane API behind API Gateway: the same Hono app the local server runs. */
export const handler = async (event: LambdaEvent, context: Parameters<ReturnType<typeof handle>>[1]) => {
  app ??= awsApiDeps().then((deps) => handle(createApiApp(deps)));
  app.catch(() => {
    app = undefined;
  });
  return (await app)(event, context);
};
