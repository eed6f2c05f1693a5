import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Singleflight } from '../../provider/src/cache/index.ts';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('100 concurrent calls for one key run the work once and all get its result', async () => {
  const flights = new Singleflight();
  let calls = 0;
  const gate = deferred<string>();
  const results = Array.from({ length: 100 }, () =>
    flights.do('k', () => {
      calls += 1;
      return gate.promise;
    })
  );
  assert.equal(flights.size, 1);
  gate.resolve('sha256:aa');
  assert.deepEqual(new Set(await Promise.all(results)), new Set(['sha256:aa']));
  assert.equal(calls, 1);
  assert.equal(flights.size, 0, 'nothing retained after settle');
});

test('different keys run separately', async () => {
  const flights = new Singleflight();
  const seen: string[] = [];
  await Promise.all(['a', 'b', 'a'].map((k) => flights.do(k, async () => seen.push(k))));
  assert.deepEqual(seen.sort(), ['a', 'b']);
});

test('an error reaches every waiter, and the next call starts afresh', async () => {
  const flights = new Singleflight();
  let calls = 0;
  const failing = () => {
    calls += 1;
    return Promise.reject(new Error('boom'));
  };
  const settled = await Promise.allSettled([flights.do('k', failing), flights.do('k', failing)]);
  assert.deepEqual(
    settled.map((s) => s.status === 'rejected' && (s.reason as Error).message),
    ['boom', 'boom']
  );
  assert.equal(calls, 1);
  assert.equal(flights.size, 0);
  assert.equal(await flights.do('k', async () => 'ok'), 'ok');
  // A synchronous throw is a rejection too, not an exception out of do().
  await assert.rejects(
    flights.do('k', () => {
      throw new Error('sync');
    }),
    /sync/
  );
});

test('one waiter giving up does not cancel the work for the others', async () => {
  const flights = new Singleflight();
  const gate = deferred<string>();
  let workSignal: AbortSignal | undefined;
  const impatient = new AbortController();
  const a = flights.do(
    'k',
    (signal) => {
      workSignal = signal;
      return gate.promise;
    },
    impatient.signal
  );
  const b = flights.do('k', () => Promise.resolve('unused'), new AbortController().signal);
  impatient.abort(new Error('caller deadline'));
  await assert.rejects(a, /caller deadline/);
  assert.equal(workSignal?.aborted, false);
  gate.resolve('done');
  assert.equal(await b, 'done');
});

test('when every waiter gives up the work is aborted and a new call starts fresh work', async () => {
  const flights = new Singleflight();
  let workSignal: AbortSignal | undefined;
  const caller = new AbortController();
  const first = flights.do(
    'k',
    (signal) => {
      workSignal = signal;
      return new Promise<string>(() => {}); // never settles by itself
    },
    caller.signal
  );
  await Promise.resolve(); // let the work start
  caller.abort(new Error('gone'));
  await assert.rejects(first, /gone/);
  assert.equal(workSignal?.aborted, true);
  assert.equal(flights.size, 0);
  assert.equal(await flights.do('k', async () => 'fresh'), 'fresh');
});

test('an already aborted signal rejects without starting work', async () => {
  const flights = new Singleflight();
  let calls = 0;
  await assert.rejects(
    flights.do('k', async () => (calls += 1), AbortSignal.abort(new Error('late'))),
    /late/
  );
  assert.equal(calls, 0);
});
