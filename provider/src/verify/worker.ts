/**
 * Worker thread entry: rebuilds the authorities from plain material once, then verifies candidate batches for
 * the pool (pool.ts). Only data crosses the thread boundary; the verdict code is the same as on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileAuthority, type AuthorityMaterial } from './authorities.ts';
import { verifyCandidate } from './candidate.ts';
import { selectorFor } from './decide.ts';
import type { PoolRequest, PoolResponse } from './pool.ts';

const materials = (workerData as { materials: AuthorityMaterial[] }).materials;
const byName = new Map(materials.map((m) => [m.name, compileAuthority(m)]));

parentPort?.on('message', (request: PoolRequest) => {
  let response: PoolResponse;
  try {
    const select = selectorFor(request.requirements, byName);
    response = {
      id: request.id,
      outcomes: request.candidates.map((c) => verifyCandidate(c, request.digest, select)),
    };
  } catch (err) {
    response = { id: request.id, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(response);
});
