import { z } from 'zod';
import { durationSchema } from './duration.ts';

/**
 * The configuration file (DESIGN.md section 5). Every default lives here, so a parsed config is complete and
 * the rest of the code never guesses.
 */
const nonEmpty = z.string().min(1);
const hostPort = z
  .string()
  .min(1)
  .regex(
    /^(\*|[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?)$/,
    'must be host[:port], [ipv6][:port] or "*"'
  );

export const DEFAULT_PORT = 8443;
export const DEFAULT_MAX_KEYS = 1000;
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

const tlsSchema = z
  .object({
    certFile: nonEmpty.optional(),
    keyFile: nonEmpty.optional(),
    clientCAFile: nonEmpty.optional(),
    /** Optional: names the Gatekeeper client certificate must carry (DNS SAN or CN), e.g. gatekeeper-webhook-service.gatekeeper-system.svc. */
    clientNames: z.array(nonEmpty).default([]),
    /** How often certFile, keyFile and clientCAFile are re-read (hot reload); tests use a short one. */
    reloadInterval: durationSchema.default(10_000),
  })
  .strict()
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: 'certFile and keyFile go together',
  });

const serverSchema = z
  .object({
    host: nonEmpty.default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(DEFAULT_PORT),
    tls: tlsSchema.default({ clientNames: [], reloadInterval: 10_000 }),
    kyvernoAuth: z
      .object({
        tokenReview: z.boolean().default(false),
        audience: nonEmpty.default('sigpin'),
        /** Accepted token users, e.g. system:serviceaccount:kyverno:kyverno-admission-controller; empty = any. */
        usernames: z.array(nonEmpty).default([]),
        cacheTTL: durationSchema.default(60_000),
      })
      .strict()
      .default({ tokenReview: false, audience: 'sigpin', usernames: [], cacheTTL: 60_000 }),
    maxKeys: z.number().int().min(1).max(10_000).default(DEFAULT_MAX_KEYS),
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(DEFAULT_BODY_LIMIT_BYTES),
    /** Deadlines per route kind: the mutation webhook has the tightest budget (Gatekeeper: 1 s by default). */
    timeouts: z
      .object({
        resolve: durationSchema.default(2_500),
        mutate: durationSchema.default(1_800),
        verify: durationSchema.default(2_800),
      })
      .strict()
      .default({ resolve: 2_500, mutate: 1_800, verify: 2_800 }),
    keepAliveTimeout: durationSchema.default(95_000),
  })
  .strict();

const credentialSchema = z
  .object({
    registry: hostPort,
    username: nonEmpty,
    password: z.string().optional(),
    passwordFile: nonEmpty.optional(),
  })
  .strict()
  .refine((c) => (c.password === undefined) !== (c.passwordFile === undefined), {
    message: 'exactly one of password or passwordFile',
  });

const registriesSchema = z
  .object({
    allow: z.array(hostPort).default([]),
    insecure: z.array(hostPort).default([]),
    credentials: z.array(credentialSchema).default([]),
    dockerConfigFile: nonEmpty.optional(),
    /** PEM bundle of extra CAs for registries with a private CA (added to the system roots). */
    caFile: nonEmpty.optional(),
    timeout: durationSchema.default(5_000),
    maxConcurrency: z.number().int().min(1).max(256).default(16),
    maxRetries: z.number().int().min(0).max(5).default(2),
  })
  .strict();

const cacheSchema = z
  .object({
    url: z
      .string()
      .regex(/^(memory:\/\/|rediss?:\/\/.+)$/, 'must be memory:// or redis://host:port or rediss://host:port')
      .default('memory://'),
    digestTTL: durationSchema.default(60_000),
    /** How long past digestTTL a digest may still be served while it is refreshed in the background. */
    staleTTL: durationSchema.default(300_000),
    verdictTTL: durationSchema.default(3_600_000),
    negativeTTL: durationSchema.default(30_000),
    hmacKeyFile: nonEmpty.optional(),
    l1MaxEntries: z.number().int().min(100).max(10_000_000).default(50_000),
    /** When true, /readyz fails while the shared store is unreachable (lookups still fall back to memory). */
    required: z.boolean().default(false),
  })
  .strict();

const secretRefSchema = z
  .object({ namespace: nonEmpty, name: nonEmpty, key: nonEmpty.default('cosign.pub') })
  .strict();

const keySchema = z
  .object({ path: nonEmpty.optional(), pem: nonEmpty.optional(), secretRef: secretRefSchema.optional() })
  .strict()
  .refine((k) => [k.path, k.pem, k.secretRef].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of path, pem or secretRef',
  });

const identitySchema = z
  .object({
    issuer: nonEmpty.optional(),
    issuerRegExp: nonEmpty.optional(),
    subject: nonEmpty.optional(),
    subjectRegExp: nonEmpty.optional(),
    /** Extra Fulcio certificate claims by OID (e.g. 1.3.6.1.4.1.57264.1.12 source repository URI): exact values. */
    extensions: z.record(z.string().regex(/^\d+(\.\d+)+$/, 'must be a dotted OID'), z.string()).default({}),
  })
  .strict()
  .refine((i) => (i.issuer === undefined) !== (i.issuerRegExp === undefined), {
    message: 'exactly one of issuer or issuerRegExp',
  })
  .refine((i) => (i.subject === undefined) !== (i.subjectRegExp === undefined), {
    message: 'exactly one of subject or subjectRegExp',
  });

const authoritySchema = z
  .object({
    name: z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be lowercase letters, digits and dashes'),
    key: keySchema.optional(),
    keyless: z
      .object({ trustedRoot: nonEmpty, identities: z.array(identitySchema).min(1) })
      .strict()
      .optional(),
    tlog: z.enum(['optional', 'required']).default('optional'),
    /** Key authorities: a trusted_root.json whose transparency logs check Rekor SETs / inclusion proofs. */
    trustedRoot: nonEmpty.optional(),
  })
  .strict()
  .refine((a) => (a.key === undefined) !== (a.keyless === undefined), {
    message: 'exactly one of key or keyless',
  })
  .refine((a) => a.keyless === undefined || a.trustedRoot === undefined, {
    message: 'keyless authorities name their trusted root in keyless.trustedRoot',
    path: ['trustedRoot'],
  })
  .refine((a) => a.key === undefined || a.tlog !== 'required' || a.trustedRoot !== undefined, {
    message: 'tlog: required needs trustedRoot (the transparency logs to trust)',
    path: ['trustedRoot'],
  });

const attestationRequirementSchema = z
  .object({ predicateType: nonEmpty, authorities: z.array(nonEmpty).min(1) })
  .strict();

const policySchema = z
  .object({
    name: nonEmpty,
    images: z.array(nonEmpty).min(1),
    mode: z.enum(['mutate', 'validate-only']).default('mutate'),
    verify: z.boolean().default(true),
    authorities: z.array(nonEmpty).default([]),
    threshold: z.number().int().min(1).default(1),
    attestations: z.array(attestationRequirementSchema).default([]),
  })
  .strict();

const kubernetesSchema = z
  .object({
    /** Read pull secrets (and key Secrets) through the Kubernetes API; off outside a cluster. */
    enabled: z.boolean().default(false),
    kubeconfig: nonEmpty.optional(),
    pullSecretsTTL: durationSchema.default(60_000),
  })
  .strict();

export const configSchema = z
  .object({
    server: serverSchema.default(serverSchema.parse({})),
    registries: registriesSchema.default(registriesSchema.parse({})),
    cache: cacheSchema.default(cacheSchema.parse({})),
    authorities: z.array(authoritySchema).default([]),
    policies: z.array(policySchema).default([]),
    kubernetes: kubernetesSchema.default(kubernetesSchema.parse({})),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
  })
  .strict()
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.authorities.forEach((a, i) => {
      if (names.has(a.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['authorities', i, 'name'],
          message: `duplicate authority "${a.name}"`,
        });
      }
      names.add(a.name);
    });
    const policyNames = new Set<string>();
    config.policies.forEach((p, i) => {
      if (policyNames.has(p.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', i, 'name'],
          message: `duplicate policy "${p.name}"`,
        });
      }
      policyNames.add(p.name);
      p.authorities.forEach((a, j) => {
        if (!names.has(a)) {
          ctx.addIssue({
            code: 'custom',
            path: ['policies', i, 'authorities', j],
            message: `unknown authority "${a}"`,
          });
        }
      });
      if (p.verify && p.authorities.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', i, 'authorities'],
          message: 'a verifying policy needs at least one authority (or set verify: false)',
        });
      }
      if (p.threshold > Math.max(1, p.authorities.length)) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', i, 'threshold'],
          message: `threshold ${p.threshold} exceeds the ${p.authorities.length} authorities listed`,
        });
      }
      p.attestations.forEach((att, j) =>
        att.authorities.forEach((a, k) => {
          if (!names.has(a)) {
            ctx.addIssue({
              code: 'custom',
              path: ['policies', i, 'attestations', j, 'authorities', k],
              message: `unknown authority "${a}"`,
            });
          }
        })
      );
    });
  });

export type Config = z.output<typeof configSchema>;
export type AuthorityConfig = Config['authorities'][number];
export type PolicyConfig = Config['policies'][number];
export type CacheConfig = Config['cache'];
export type ServerConfig = Config['server'];
export type RegistriesConfig = Config['registries'];
