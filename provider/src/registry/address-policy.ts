/**
 * Which registries sigpin may contact and which network addresses it may reach (the SSRF guard).
 *
 * - `allow` entries are `host` (any port) or `host:port`; `*` allows any host whose addresses are public.
 * - Loopback, private, link-local (cloud metadata), unique-local, CGNAT and other special-purpose addresses are
 *   reachable only for hosts matched by an explicit entry, never through `*`, and never through a redirect to a
 *   host that is not listed.
 * - The check applies to the addresses a name resolves to at connection time (see `guardedLookup`), so a public
 *   name that resolves to 10.0.0.1 is refused as well as the literal.
 */
import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { SigpinError } from '../errors.ts';
import { DOCKER_HUB, DOCKER_HUB_ALIASES, DOCKER_HUB_API_HOST } from './constants.ts';

export interface HostPort {
  /** Lower-case host name or IP address; IPv6 without brackets. */
  host: string;
  port?: number;
}

/** Parses `host`, `host:port`, `[v6]` or `[v6]:port`; throws NOT_ALLOWED on anything else. */
export function parseHostPort(value: string): HostPort {
  const text = value.trim().toLowerCase();
  const v6 = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(text);
  if (v6) return withPort(v6[1] ?? '', v6[2], value);
  const plain = /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/.exec(text);
  if (plain) return withPort(plain[1] ?? '', plain[3], value);
  throw new SigpinError('NOT_ALLOWED', `not a registry host: ${JSON.stringify(value)}`);
}

function withPort(host: string, port: string | undefined, original: string): HostPort {
  if (port === undefined) return { host };
  const n = Number(port);
  if (n < 1 || n > 65535) throw new SigpinError('NOT_ALLOWED', `bad port in ${JSON.stringify(original)}`);
  return { host, port: n };
}

export function formatHostPort({ host, port }: HostPort): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

/** Registry names as credentials and the allowlist see them: lower case, Docker Hub aliases folded. */
export function canonicalRegistry(registry: string): string {
  const hp = parseHostPort(registry);
  if (hp.port === undefined && DOCKER_HUB_ALIASES.includes(hp.host)) return DOCKER_HUB;
  return formatHostPort(hp);
}

/** The host to dial for a registry name: docker.io is served by registry-1.docker.io. */
export function dialHost(registry: string): HostPort {
  const hp = parseHostPort(canonicalRegistry(registry));
  return hp.host === DOCKER_HUB && hp.port === undefined ? { host: DOCKER_HUB_API_HOST } : hp;
}

// Special-purpose ranges (IANA IPv4/IPv6 special-purpose registries) that must not be reached via '*'.
// Separate lists per family: a BlockList checks IPv4 addresses against IPv6 rules as IPv4-mapped addresses,
// so one list holding ::ffff:0:0/96 would match every IPv4 address.
const SPECIAL_V4 = new BlockList();
const SPECIAL_V6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  SPECIAL_V4.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['::ffff:0:0', 96], // IPv4-mapped: may hide any IPv4 address
  ['64:ff9b::', 96], // NAT64: may hide any IPv4 address
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, ...)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: may hide any IPv4 address
  ['fc00::', 7], // unique local (incl. fd00:ec2::254 metadata)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
] as const) {
  SPECIAL_V6.addSubnet(net, prefix, 'ipv6');
}

/** True for addresses that are not globally routable unicast (loopback, private, link-local, ...). */
export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return SPECIAL_V4.check(address, 'ipv4');
  if (family === 6) return SPECIAL_V6.check(address, 'ipv6');
  return true; // not an address at all: refuse
}

/** The outcome of an allowlist check for one host. */
export interface Permission {
  allowed: boolean;
  /** The host was named explicitly, so it may resolve to special-purpose addresses. */
  explicit: boolean;
}

export class AddressPolicy {
  readonly #entries: HostPort[];
  readonly #wildcard: boolean;
  readonly #insecure: HostPort[];

  constructor(allow: readonly string[], insecure: readonly string[] = []) {
    this.#wildcard = allow.includes('*');
    this.#entries = allow.filter((a) => a !== '*').map((a) => parseHostPort(canonicalRegistry(a)));
    this.#insecure = insecure.map((a) => parseHostPort(canonicalRegistry(a)));
  }

  /** Whether `host[:port]` may be contacted, and whether special addresses are acceptable for it. */
  permission(hostPort: string | HostPort): Permission {
    const hp = typeof hostPort === 'string' ? parseHostPort(canonicalRegistry(hostPort)) : hostPort;
    const explicit = this.#entries.some((e) => matches(e, hp));
    if (explicit) return { allowed: true, explicit: true };
    // '*' covers public hosts only: an IP literal is decided here, a name when it is resolved
    if (this.#wildcard && !(isIP(hp.host) && isSpecialAddress(hp.host)))
      return { allowed: true, explicit: false };
    return { allowed: false, explicit: false };
  }

  /** Plain HTTP allowed for this host (entries without a port cover every port). */
  isInsecure(hostPort: string | HostPort): boolean {
    const hp = typeof hostPort === 'string' ? parseHostPort(canonicalRegistry(hostPort)) : hostPort;
    return this.#insecure.some((e) => matches(e, hp));
  }
}

function matches(entry: HostPort, candidate: HostPort): boolean {
  return entry.host === candidate.host && (entry.port === undefined || entry.port === candidate.port);
}

/** Marks lookups refused by the guard, so the transport maps them to NOT_ALLOWED rather than a network error. */
export class AddressNotAllowedError extends Error {
  readonly code = 'SIGPIN_ADDRESS_NOT_ALLOWED';
  constructor(hostname: string) {
    super(`${hostname} resolves only to addresses that are not allowed (loopback, private or link-local)`);
    this.name = 'AddressNotAllowedError';
  }
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number
) => void;

/**
 * A `net.connect` lookup that drops special-purpose addresses from DNS answers (after resolution, so DNS
 * rebinding cannot smuggle 127.0.0.1 behind a public name) and fails when nothing is left.
 */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) {
      callback(err, []);
      return;
    }
    const usable = addresses.filter((a) => !isSpecialAddress(a.address));
    const first = usable[0];
    if (!first) {
      callback(new AddressNotAllowedError(hostname), []);
      return;
    }
    if (options.all) callback(null, usable);
    else callback(null, first.address, first.family);
  });
}
