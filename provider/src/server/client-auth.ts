import type { TLSSocket } from 'node:tls';

/**
 * Gatekeeper presents its webhook certificate as a client certificate when asked (protocols.md 1.2). The socket
 * requests one but does not require it, because Kyverno never sends one; the Gatekeeper routes check here.
 */
export interface GatekeeperClientPolicy {
  /** True when a client CA is configured: a verified client certificate is then required. */
  requireClientCert: boolean;
  /** Accepted DNS SAN or CN values; empty accepts any certificate the CA verified. */
  names: readonly string[];
}

export type ClientCheck = { ok: true } | { ok: false; status: 401 | 403 | 426; message: string };

export function checkGatekeeperClient(socket: TLSSocket, policy: GatekeeperClientPolicy): ClientCheck {
  // Gatekeeper's client insists on TLS 1.3; anything older on these routes is not Gatekeeper.
  if (socket.getProtocol?.() !== 'TLSv1.3') {
    return { ok: false, status: 426, message: 'Gatekeeper routes require TLS 1.3' };
  }
  if (!policy.requireClientCert) return { ok: true };
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) {
    return { ok: false, status: 401, message: 'a client certificate is required' };
  }
  if (!socket.authorized) {
    return {
      ok: false,
      status: 403,
      message: `client certificate not trusted: ${String(socket.authorizationError)}`,
    };
  }
  if (policy.names.length === 0) return { ok: true };
  const sans = (peer.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  const cn = peer.subject?.CN;
  const presented = [...sans, ...(typeof cn === 'string' ? [cn] : [])];
  if (presented.some((n) => policy.names.includes(n))) return { ok: true };
  return { ok: false, status: 403, message: 'client certificate name not accepted' };
}
