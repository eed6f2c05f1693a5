import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';

export interface TlsFileOptions {
  certFile: string;
  keyFile: string;
  clientCAFile?: string;
  /** How often the files are re-read; Kubernetes swaps Secret mounts through symlinks, which fs.watch misses. */
  intervalMs?: number;
  logger: Logger;
}

export interface TlsMaterial {
  cert: string;
  key: string;
  ca?: string;
}

export function secureContextOptions(m: TlsMaterial): SecureContextOptions {
  return m.ca ? { cert: m.cert, key: m.key, ca: m.ca } : { cert: m.cert, key: m.key };
}

/** Watches the serving certificate, its key and the client CA, and reports a changed, loadable set. */
export class TlsFileWatcher {
  readonly #o: TlsFileOptions;
  #fingerprint = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(options: TlsFileOptions) {
    this.#o = options;
  }

  async load(): Promise<TlsMaterial> {
    const [cert, key, ca] = await Promise.all([
      readFile(this.#o.certFile, 'utf8'),
      readFile(this.#o.keyFile, 'utf8'),
      this.#o.clientCAFile ? readFile(this.#o.clientCAFile, 'utf8') : Promise.resolve(undefined),
    ]);
    this.#fingerprint = fingerprint(cert, key, ca);
    return ca === undefined ? { cert, key } : { cert, key, ca };
  }

  /** Calls `apply` with new material whenever the files change; a half-written or invalid set is skipped. */
  start(apply: (m: TlsMaterial) => void): void {
    const tick = async (): Promise<void> => {
      try {
        const previous = this.#fingerprint;
        const material = await this.load();
        if (this.#fingerprint === previous) return;
        apply(material);
        this.#o.logger.info(
          { certFile: this.#o.certFile, clientCAFile: this.#o.clientCAFile },
          'TLS material reloaded'
        );
      } catch (err) {
        this.#o.logger.warn({ err }, 'TLS material not reloaded; keeping the current one');
      }
    };
    this.#timer = setInterval(() => void tick(), this.#o.intervalMs ?? 10_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}

function fingerprint(...parts: Array<string | undefined>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p ?? '').update('\0');
  return h.digest('hex');
}
