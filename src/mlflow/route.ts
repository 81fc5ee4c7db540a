/**
 * How an MLflow endpoint is declared: its methods and path (relative to `/api/2.0/mlflow`, which
 * `/ajax-api/2.0/mlflow` is rewritten to), the role it needs, a summary for the OpenAPI document, and a handler
 * that reads an `MlflowMessage` and returns the reply message.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import type { App } from '../platform/app-type.ts';
import type { RouteRole } from '../platform/auth.ts';
import { MlflowMessage, sendMessage, type ConflictCode } from './wire.ts';

/** Any MLflow reply message (the document shows the shape in each summary's protobuf name). */
export const MlflowReply = Type.Object({}, { additionalProperties: true, description: 'the MLflow response message (JSON)' });
const MlflowErrorReply = Type.Object({ error_code: Type.String(), message: Type.String() });

export interface EndpointOptions {
  readonly methods: readonly HTTPMethods[];
  readonly path: string;
  readonly role: RouteRole;
  readonly summary: string;
  /** What a 409 of the services means on this endpoint (default: the name is taken). */
  readonly conflict?: ConflictCode;
}

export type EndpointHandler = (message: MlflowMessage, request: FastifyRequest) => Promise<Record<string, unknown> | void>;

/** Registers one MLflow endpoint on a scope (one route per method). */
export function endpoint(scope: App, options: EndpointOptions, handler: EndpointHandler): void {
  scope.route({
    method: [...options.methods],
    url: options.path,
    config: { role: options.role, ...(options.conflict === undefined ? {} : { mlflowConflict: options.conflict }) },
    schema: {
      summary: options.summary,
      tags: ['mlflow'],
      response: { 200: MlflowReply, 400: MlflowErrorReply, 404: MlflowErrorReply },
    },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const message = MlflowMessage.of(request);
      const out = await handler(message, request);
      return sendMessage(reply, out ?? {});
    },
  });
}
