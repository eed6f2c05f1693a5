import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, setupSigningSkopeo, type PushedImage } from '../support/images.ts';
import { providerRequest, startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { sigstoreRegistriesDir } from '../support/signing.ts';
import {
  dockerConfigSecret,
  serviceAccount,
  startFakeApiServer,
  type FakeApiServer,
} from '../kube/fake-api-server.ts';
import { FIXTURES } from '../verify/env.ts';

interface Response {
  response: {
    items: Array<{ key: string; value?: Record<string, unknown>; error?: string }>;
    systemError?: string;
  };
}

const skip = requireBinary('docker-registry').skip ?? requireBinary('skopeo').skip;

// No Kubernetes runs here: a fake API server serves the ServiceAccount, pull secret and key Secret.
describe('provider with Kubernetes pull secrets and a key from a Secret (fake API server)', { skip }, () => {
  let registry: TestRegistry;
  let api: FakeApiServer;
  let provider: TestProvider;
  let image: PushedImage;

  before(async () => {
    registry = await startRegistry({ auth: 'htpasswd' });
    const d = await sigstoreRegistriesDir(registry.host);
    try {
      image = await pushImage(registry, 'acme/app', 'v1', 'oci-manifest', {
        skopeo: await setupSigningSkopeo(),
        extraArgs: [
          '--registries.d',
          d.dir,
          '--sign-by-sigstore-private-key',
          join(FIXTURES, 'testbed-generated.key'),
          '--sign-passphrase-file',
          join(FIXTURES, 'testbed.pass'),
        ],
      });
    } finally {
      await d.remove();
    }
    api = await startFakeApiServer();
    api.put(serviceAccount('team-a', ['regcred']));
    api.put(
      dockerConfigSecret('team-a', 'regcred', {
        [registry.host]: {
          auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64'),
        },
      })
    );
    api.put(serviceAccount('team-b', []));
    const pub = await readFile(join(FIXTURES, 'testbed-generated.pub'));
    api.put({
      kind: 'Secret',
      namespace: 'sigpin-system',
      name: 'release-key',
      body: { data: { 'cosign.pub': pub.toString('base64') } },
    });
    const kubeconfig = [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: fake, cluster: {server: "${api.url}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: sigpin, user: {token: provider-token}}]',
      'contexts: [{name: fake, context: {cluster: fake, user: sigpin}}]',
      'current-context: fake',
    ].join('\n');
    provider = await startProvider({
      config: {
        kubernetes: { enabled: true, kubeconfig: 'kubeconfig' },
        registries: { allow: [registry.host], insecure: [registry.host] },
        authorities: [
          { name: 'release', key: { secretRef: { namespace: 'sigpin-system', name: 'release-key' } } },
        ],
        policies: [{ name: 'acme', images: ['**'], authorities: ['release'] }],
      },
      files: { kubeconfig },
    });
  });
  after(async () => {
    await provider?.stop();
    await api?.stop();
    await registry?.stop();
  });

  test('ns= selects the namespace pull secret; a namespace without one is UNAUTHORIZED', async () => {
    const { body } = await provider.post(
      '/gatekeeper/v1/verify',
      providerRequest([`[ns=team-a]${image.reference}`, `[ns=team-b]${image.reference}`])
    );
    const [a, b] = (body as Response).response.items;
    assert.equal(a?.value?.['verified'], true, JSON.stringify(body));
    assert.equal(a?.value?.['digest'], image.digest);
    assert.match(b?.error ?? '', /^UNAUTHORIZED: /);
    assert.ok(api.requests.some((r) => r.includes('/namespaces/sigpin-system/secrets/release-key')));
    assert.ok(api.requests.some((r) => r.includes('/namespaces/team-a/serviceaccounts/default')));
  });
});
