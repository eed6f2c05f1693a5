/**
 * Kubernetes objects for the Kyverno policy tests, in namespace `team`. Containers are named by list and
 * position: c0, c1, ... (containers), i0, ... (initContainers), e0, ... (ephemeralContainers), so an UPDATE
 * test can give the old object a container of the same name.
 */

/** Image references of the test world (see fixture.ts). */
export interface Images {
  app1: string;
  app2: string;
  init: string;
  unsigned: string;
  untrusted: string;
  legacy: string;
  missing: string;
  unreachable: string;
}

export interface PodImages {
  containers: string[];
  initContainers?: string[];
  ephemeralContainers?: string[];
}

export const NAMESPACE = 'team';

export function podSpec(images: PodImages): Record<string, unknown> {
  const list = (prefix: string, refs: string[]): Array<{ name: string; image: string }> =>
    refs.map((image, i) => ({ name: `${prefix}${i}`, image }));
  return {
    ...(images.initContainers ? { initContainers: list('i', images.initContainers) } : {}),
    containers: list('c', images.containers),
    ...(images.ephemeralContainers ? { ephemeralContainers: list('e', images.ephemeralContainers) } : {}),
  };
}

export function pod(name: string, images: PodImages): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NAMESPACE }, spec: podSpec(images) };
}

export function deployment(name: string, images: PodImages): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: podSpec(images) },
    },
  };
}

export function cronJob(name: string, images: PodImages): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      schedule: '0 3 * * *',
      jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', ...podSpec(images) } } } },
    },
  };
}

/** The pods-only variant's check: a Pod it must handle and a Deployment it must leave alone. */
export function podsOnlyMix(img: Images): Array<Record<string, unknown>> {
  return [pod('solo', { containers: [img.app1] }), deployment('web', { containers: [img.unsigned] })];
}

/**
 * The workload-variant mix both policy generations are applied to: a signed Pod using every container list (with a
 * validate-only image), unsigned, untrusted, missing and unreachable images, Deployments and a CronJob.
 */
export function workloadMix(img: Images): Array<Record<string, unknown>> {
  return [
    pod('signed', {
      containers: [img.app1, img.legacy],
      initContainers: [img.init],
      ephemeralContainers: [img.app2],
    }),
    pod('unsigned', { containers: [img.app1, img.unsigned] }),
    pod('untrusted', { initContainers: [img.untrusted], containers: [img.app1] }),
    pod('missing', { containers: [img.missing] }),
    pod('unreachable', { containers: [img.unreachable] }),
    deployment('web', { containers: [img.app2], initContainers: [img.init] }),
    deployment('web-unsigned', { containers: [img.unsigned] }),
    cronJob('nightly', { containers: [img.app1] }),
  ];
}
