/**
 * A small worker_threads pool for signature checks (DESIGN.md section 9: keyless verification costs tens of ms
 * of CPU, so a big batch must not stall the event loop that answers cached lookups). Each worker holds its own
 * compiled authorities; a request carries only candidates, the digest and the requirements.
 */
import { Worker } from 'node:worker_threads';
import { SigpinError } from '../errors.ts';
import type { AuthorityMaterial } from './authorities.ts';
import type { Candidate, CandidateOutcome } from './candidate.ts';
import type { VerificationRequirements } from './types.ts';

export interface PoolRequest {
  id: number;
  digest: string;
  requirements: VerificationRequirements;
  candidates: Candidate[];
}

export type PoolResponse = { id: number; outcomes: CandidateOutcome[] } | { id: number; error: string };

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (o: CandidateOutcome[]) => void; reject: (e: Error) => void }>;
}

// The compiled build (provider/dist) holds worker.js beside this file; the sources hold worker.ts.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

export class VerifierPool {
  readonly #materials: AuthorityMaterial[];
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closed = false;

  constructor(size: number, materials: AuthorityMaterial[]) {
    this.#materials = materials;
    for (let n = 0; n < size; n++) this.#slots.push(this.#spawn());
  }

  get size(): number {
    return this.#slots.length;
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_URL, { workerData: { materials: this.#materials } });
    const slot: Slot = { worker, pending: new Map() };
    worker.unref(); // an idle pool never keeps the process alive
    worker.on('message', (msg: PoolResponse) => {
      const waiter = slot.pending.get(msg.id);
      if (!waiter) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) worker.unref();
      if ('error' in msg) waiter.reject(new SigpinError('INTERNAL', `verifier worker: ${msg.error}`));
      else waiter.resolve(msg.outcomes);
    });
    const fail = (err: Error): void => {
      for (const waiter of slot.pending.values())
        waiter.reject(new SigpinError('INTERNAL', `verifier worker died: ${err.message}`));
      slot.pending.clear();
      const at = this.#slots.indexOf(slot);
      if (at >= 0 && !this.#closed) this.#slots[at] = this.#spawn();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.#closed) fail(new Error(`exit code ${code}`));
    });
    return slot;
  }

  /** Splits the candidates over the least busy workers; outcomes come back in candidate order. */
  async verify(
    digest: string,
    requirements: VerificationRequirements,
    candidates: Candidate[]
  ): Promise<CandidateOutcome[]> {
    if (this.#closed) throw new SigpinError('INTERNAL', 'verifier pool is closed');
    const slots = [...this.#slots].sort((a, b) => a.pending.size - b.pending.size);
    const parts = Math.min(slots.length, candidates.length);
    const chunks: Candidate[][] = Array.from({ length: parts }, () => []);
    candidates.forEach((c, n) => chunks[n % parts]?.push(c));
    const results = await Promise.all(
      chunks.map(
        (chunk, n) =>
          new Promise<CandidateOutcome[]>((resolve, reject) => {
            const slot = slots[n] as Slot;
            const id = this.#nextId++;
            slot.pending.set(id, { resolve, reject });
            slot.worker.ref();
            const request: PoolRequest = { id, digest, requirements, candidates: chunk };
            slot.worker.postMessage(request);
          })
      )
    );
    // undo the round-robin split
    const outcomes: CandidateOutcome[] = new Array<CandidateOutcome>(candidates.length);
    results.forEach((chunk, n) => chunk.forEach((o, k) => (outcomes[k * parts + n] = o)));
    return outcomes;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const slot of this.#slots) {
      for (const waiter of slot.pending.values())
        waiter.reject(new SigpinError('INTERNAL', 'verifier pool closed'));
      slot.pending.clear();
    }
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
