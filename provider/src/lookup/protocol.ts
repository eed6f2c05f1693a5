import { z } from 'zod';

/** Gatekeeper's external data wire format, used on every lookup route (protocols.md section 1.3). */
export const PROVIDER_API_VERSION = 'externaldata.gatekeeper.sh/v1beta1';

export interface ProviderItem {
  key: string;
  value?: unknown;
  error?: string;
}

export interface ProviderResponse {
  apiVersion: typeof PROVIDER_API_VERSION;
  kind: 'ProviderResponse';
  response: { idempotent: true; items: ProviderItem[]; systemError?: string };
}

export class RequestError extends Error {
  override readonly name = 'RequestError';
}

// Building a zod schema costs far more than using one: build it once per set of limits, not per request.
const schemas = new Map<string, ReturnType<typeof buildProviderRequestSchema>>();

function providerRequestSchema(maxKeys: number, maxKeyLength: number) {
  const id = `${maxKeys}/${maxKeyLength}`;
  let schema = schemas.get(id);
  if (schema === undefined) {
    schema = buildProviderRequestSchema(maxKeys, maxKeyLength);
    schemas.set(id, schema);
  }
  return schema;
}

function buildProviderRequestSchema(maxKeys: number, maxKeyLength: number) {
  return z.object({
    apiVersion: z.string().optional(),
    kind: z.string().optional(),
    request: z.object({
      // Gatekeeper omits `keys` when empty (omitempty), so absent means none.
      keys: z
        .array(z.string().max(maxKeyLength, `a key is longer than ${maxKeyLength} characters`))
        .max(maxKeys, `too many keys: at most ${maxKeys} per request`)
        .default([]),
    }),
  });
}

/** Checks a parsed body and returns its keys, de-duplicated in first-seen order; throws RequestError. */
export function parseProviderRequest(
  body: unknown,
  limits: { maxKeys: number; maxKeyLength: number }
): string[] {
  const result = providerRequestSchema(limits.maxKeys, limits.maxKeyLength).safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new RequestError(`invalid ProviderRequest: ${where}${issue?.message ?? 'wrong shape'}`);
  }
  return [...new Set(result.data.request.keys)];
}

export function providerResponse(items: ProviderItem[], systemError?: string): ProviderResponse {
  return {
    apiVersion: PROVIDER_API_VERSION,
    kind: 'ProviderResponse',
    response: systemError ? { idempotent: true, items, systemError } : { idempotent: true, items },
  };
}
