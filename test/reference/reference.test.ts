import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SigpinError } from '../../provider/src/errors.ts';
import {
  MAX_REFERENCE_LENGTH,
  canonicalReference,
  isSha256Digest,
  parseReference,
  pinnedImage,
  registryEndpoint,
  repositoryName,
} from '../../provider/src/reference/index.ts';
import { assertInvalidReference } from './support.ts';

const HEX = 'f'.repeat(64);
const D = `sha256:${HEX}`;
const D2 = `sha256:${'0123456789abcdef'.repeat(4)}`;

interface Expected {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

// Cases from distribution/reference's reference_test.go, normalize_test.go and regexp_test.go, read through
// ParseDockerRef's normalization (which is what kubelet/containerd apply), plus sigpin's own.
const VALID: ReadonlyArray<[string, Expected]> = [
  // reference_test.go TestReferenceParse
  ['test_com', { registry: 'docker.io', repository: 'library/test_com', tag: 'latest' }],
  ['test.com:tag', { registry: 'docker.io', repository: 'library/test.com', tag: 'tag' }],
  ['test.com:5000', { registry: 'docker.io', repository: 'library/test.com', tag: '5000' }],
  ['test.com/repo:tag', { registry: 'test.com', repository: 'repo', tag: 'tag' }],
  ['test:5000/repo', { registry: 'test:5000', repository: 'repo', tag: 'latest' }],
  ['test:5000/repo:tag', { registry: 'test:5000', repository: 'repo', tag: 'tag' }],
  [`test:5000/repo@${D}`, { registry: 'test:5000', repository: 'repo', digest: D }],
  [`test:5000/repo:tag@${D}`, { registry: 'test:5000', repository: 'repo', tag: 'tag', digest: D }],
  ['lowercase:Uppercase', { registry: 'docker.io', repository: 'library/lowercase', tag: 'Uppercase' }],
  [
    `${'a/'.repeat(127)}a:tag-puts-this-over-max`,
    { registry: 'docker.io', repository: `${'a/'.repeat(127)}a`, tag: 'tag-puts-this-over-max' },
  ],
  [
    'sub-dom1.foo.com/bar/baz/quux',
    { registry: 'sub-dom1.foo.com', repository: 'bar/baz/quux', tag: 'latest' },
  ],
  [
    'sub-dom1.foo.com/bar/baz/quux:some-long-tag',
    { registry: 'sub-dom1.foo.com', repository: 'bar/baz/quux', tag: 'some-long-tag' },
  ],
  [
    'b.gcr.io/test.example.com/my-app:test.example.com',
    { registry: 'b.gcr.io', repository: 'test.example.com/my-app', tag: 'test.example.com' },
  ],
  ['xn--n3h.com/myimage:xn--n3h.com', { registry: 'xn--n3h.com', repository: 'myimage', tag: 'xn--n3h.com' }],
  [
    `xn--7o8h.com/myimage:xn--7o8h.com@${D}`,
    { registry: 'xn--7o8h.com', repository: 'myimage', tag: 'xn--7o8h.com', digest: D },
  ],
  ['foo_bar.com:8080', { registry: 'docker.io', repository: 'library/foo_bar.com', tag: '8080' }],
  ['foo/foo_bar.com:8080', { registry: 'docker.io', repository: 'foo/foo_bar.com', tag: '8080' }],
  ['192.168.1.1', { registry: 'docker.io', repository: 'library/192.168.1.1', tag: 'latest' }],
  ['192.168.1.1:tag', { registry: 'docker.io', repository: 'library/192.168.1.1', tag: 'tag' }],
  ['192.168.1.1:5000', { registry: 'docker.io', repository: 'library/192.168.1.1', tag: '5000' }],
  ['192.168.1.1/repo', { registry: '192.168.1.1', repository: 'repo', tag: 'latest' }],
  ['192.168.1.1:5000/repo', { registry: '192.168.1.1:5000', repository: 'repo', tag: 'latest' }],
  ['192.168.1.1:5000/repo:5050', { registry: '192.168.1.1:5000', repository: 'repo', tag: '5050' }],
  ['[2001:db8::1]/repo', { registry: '[2001:db8::1]', repository: 'repo', tag: 'latest' }],
  ['[2001:db8:1:2:3:4:5:6]/repo:tag', { registry: '[2001:db8:1:2:3:4:5:6]', repository: 'repo', tag: 'tag' }],
  ['[2001:db8::1]:5000/repo', { registry: '[2001:db8::1]:5000', repository: 'repo', tag: 'latest' }],
  ['[2001:db8::1]:5000/repo:tag', { registry: '[2001:db8::1]:5000', repository: 'repo', tag: 'tag' }],
  [`[2001:db8::1]:5000/repo@${D}`, { registry: '[2001:db8::1]:5000', repository: 'repo', digest: D }],
  [
    `[2001:db8::1]:5000/repo:tag@${D}`,
    { registry: '[2001:db8::1]:5000', repository: 'repo', tag: 'tag', digest: D },
  ],
  ['[2001:db8::]:5000/repo', { registry: '[2001:db8::]:5000', repository: 'repo', tag: 'latest' }],
  ['[::1]:5000/repo', { registry: '[::1]:5000', repository: 'repo', tag: 'latest' }],
  [
    `example.com/${'a'.repeat(255)}:tag`,
    { registry: 'example.com', repository: 'a'.repeat(255), tag: 'tag' },
  ],
  // normalize_test.go TestValidateReferenceName / TestValidateRemoteName
  ['docker/docker', { registry: 'docker.io', repository: 'docker/docker', tag: 'latest' }],
  ['localhost/library/debian', { registry: 'localhost', repository: 'library/debian', tag: 'latest' }],
  ['localhost/debian', { registry: 'localhost', repository: 'debian', tag: 'latest' }],
  ['LOCALDOMAIN/library/debian', { registry: 'LOCALDOMAIN', repository: 'library/debian', tag: 'latest' }],
  [
    '127.0.0.1:5000/docker/docker',
    { registry: '127.0.0.1:5000', repository: 'docker/docker', tag: 'latest' },
  ],
  ['192.168.0.1:80', { registry: 'docker.io', repository: 'library/192.168.0.1', tag: '80' }],
  ['192.168.0.1:8/debian', { registry: '192.168.0.1:8', repository: 'debian', tag: 'latest' }],
  [
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    {
      registry: 'docker.io',
      repository: 'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
      tag: 'latest',
    },
  ],
  [
    '[fc00::1]:5000/docker/docker',
    { registry: '[fc00::1]:5000', repository: 'docker/docker', tag: 'latest' },
  ],
  [
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    { registry: '[fc00:1:2:3:4:5:6:7]:5000', repository: 'library/debian', tag: 'latest' },
  ],
  // A 64-hex path is a name once a host removes the ambiguity with an image ID.
  [
    `docker.io/${'1a3f'.repeat(16)}`,
    { registry: 'docker.io', repository: `library/${'1a3f'.repeat(16)}`, tag: 'latest' },
  ],
  ['Docker/docker', { registry: 'Docker', repository: 'docker', tag: 'latest' }],
  ['DOCKER/docker', { registry: 'DOCKER', repository: 'docker', tag: 'latest' }],
  ['docker---rules/docker', { registry: 'docker.io', repository: 'docker---rules/docker', tag: 'latest' }],
  ['d/docker', { registry: 'docker.io', repository: 'd/docker', tag: 'latest' }],
  ['jess/t', { registry: 'docker.io', repository: 'jess/t', tag: 'latest' }],
  ['dock__er/docker', { registry: 'docker.io', repository: 'dock__er/docker', tag: 'latest' }],
  // regexp_test.go
  [
    'aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb',
    { registry: 'docker.io', repository: 'aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb', tag: 'latest' },
  ],
  ['aa-a/a', { registry: 'docker.io', repository: 'aa-a/a', tag: 'latest' }],
  ['foo.com/foo_bar', { registry: 'foo.com', repository: 'foo_bar', tag: 'latest' }],
  [
    'example.com/some_separator__underscore/myimage',
    { registry: 'example.com', repository: 'some_separator__underscore/myimage', tag: 'latest' },
  ],
  ['do__cker/docker', { registry: 'docker.io', repository: 'do__cker/docker', tag: 'latest' }],
  [
    'registry.io/foo/project--id.module--name.ver---sion--name',
    { registry: 'registry.io', repository: 'foo/project--id.module--name.ver---sion--name', tag: 'latest' },
  ],
  ['0101.com/x', { registry: '0101.com', repository: 'x', tag: 'latest' }],
  ['b.gbc.io:443/x', { registry: 'b.gbc.io:443', repository: 'x', tag: 'latest' }],
  // The grammar does not range-check ports or IPv6 groups; dialling such a host fails later.
  ['192.168.1.1:75050/x', { registry: '192.168.1.1:75050', repository: 'x', tag: 'latest' }],
  ['[fd00123123123]:75050/x', { registry: '[fd00123123123]:75050', repository: 'x', tag: 'latest' }],
  [`localhost:8080@${D}`, { registry: 'docker.io', repository: 'library/localhost', tag: '8080', digest: D }],
  [`localhost:8080/name@${D}`, { registry: 'localhost:8080', repository: 'name', digest: D }],
  [`localhost@${D}`, { registry: 'docker.io', repository: 'library/localhost', digest: D }],
  // identifier cases: anything but exactly 64 lowercase hex is a name
  [`${HEX.slice(4)}`, { registry: 'docker.io', repository: `library/${HEX.slice(4)}`, tag: 'latest' }],
  [`${HEX}ffff`, { registry: 'docker.io', repository: `library/${HEX}ffff`, tag: 'latest' }],
  [`sha256:${HEX}`, { registry: 'docker.io', repository: 'library/sha256', tag: HEX }],
  // tags
  [`app:${'t'.repeat(128)}`, { registry: 'docker.io', repository: 'library/app', tag: 't'.repeat(128) }],
  ['app:_x.y-Z', { registry: 'docker.io', repository: 'library/app', tag: '_x.y-Z' }],
  // the registries sigpin meets most
  ['ghcr.io/acme/app:1.2', { registry: 'ghcr.io', repository: 'acme/app', tag: '1.2' }],
  ['127.0.0.1:5000/app', { registry: '127.0.0.1:5000', repository: 'app', tag: 'latest' }],
  ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app', tag: 'latest' }],
  ['registry.k8s.io/pause:3.10', { registry: 'registry.k8s.io', repository: 'pause', tag: '3.10' }],
];

const INVALID: ReadonlyArray<[string, RegExp]> = [
  // reference_test.go TestReferenceParse
  ['', /is empty/],
  [':justtag', /invalid repository path ""/],
  [`@${D}`, /invalid repository path ""/],
  [`repo@sha256:${'f'.repeat(34)}`, /not exactly 64 lowercase hex/],
  [`validname@invaliddigest:${HEX}`, /algorithm "invaliddigest"; only sha256/],
  [`validname@sha512:${'f'.repeat(128)}`, /algorithm "sha512"; only sha256/],
  ['Uppercase:tag', /"Uppercase" that is not lowercase/],
  ['test:5000/Uppercase/lowercase:tag', /not lowercase/],
  [`domain/${'a'.repeat(256)}:tag`, /longer than 255/],
  ['aa/asdf$$^/aa', /invalid repository path/],
  ['[2001:db8::1]', /invalid/],
  ['[2001:db8::1]:5000', /invalid/],
  ['[2001:db8::1]:tag', /invalid/],
  ['[fe80::1%eth0]:5000/repo', /invalid registry host "\[fe80::1%eth0\]:5000"/],
  ['[fe80::1%@invalidzone]:5000/repo', /invalid/],
  // normalize_test.go
  ['https://github.com/docker/docker', /invalid registry host "https:"/],
  ['docker/Docker', /not lowercase/],
  ['-docker', /invalid repository path/],
  ['-docker/docker', /invalid repository path/],
  ['-docker.io/docker/docker', /invalid registry host/],
  ['docker///docker', /invalid repository path/],
  ['docker.io/docker/Docker', /not lowercase/],
  ['docker.io/docker///docker', /invalid repository path/],
  ['[fc00::1]', /invalid/],
  ['[fc00::1]:5000', /invalid/],
  ['fc00::1:5000/debian', /invalid registry host/],
  ['[fe80::1%eth0]:5000/debian', /invalid registry host/],
  ['[2001:db8:3:4::192.0.2.33]:5000/debian', /invalid registry host/],
  [`${'1a3f'.repeat(16)}`, /64-hex image ID/],
  ['docker-/docker', /invalid repository path/],
  ['-docker-/docker', /invalid repository path/],
  ['____/____', /invalid repository path/],
  ['_docker/_docker', /invalid repository path/],
  ['dock..er/docker', /invalid registry host/],
  ['dock_.er/docker', /invalid registry host/],
  ['dock-.er/docker', /invalid registry host/],
  ['docker/', /invalid repository path/],
  [
    `${'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_'.repeat(4)}/docker`,
    /longer than 255/,
  ],
  // regexp_test.go
  ['a/a/a/a/', /invalid repository path/],
  ['a//a/a', /invalid repository path/],
  ['foo.com/', /invalid repository path/],
  ['foo.com:http/bar', /invalid registry host/],
  ['a^a', /invalid repository path/],
  ['asdf$$^/aa', /invalid repository path/],
  [`${'a/'.repeat(128)}a`, /longer than 255/],
  ['a-/a/a/a', /invalid repository path/],
  ['foo.com/a-/a/a', /invalid repository path/],
  ['foo/bar-', /invalid repository path/],
  ['foo-/bar', /invalid repository path/],
  ['foo/-bar', /invalid repository path/],
  ['_foo/bar', /invalid repository path/],
  ['foo_bar.com:8080/app', /invalid registry host/],
  ['docker_/docker_', /invalid repository path/],
  ['example.com/__underscore/myimage', /invalid repository path/],
  ['example.com/..dots/myimage', /invalid repository path/],
  ['example.com/.dots/myimage', /invalid repository path/],
  ['example.com/nodouble..dots/myimage', /invalid repository path/],
  ['docker./docker', /invalid registry host/],
  ['.docker/docker', /invalid registry host/],
  ['do__cker:8080/docker', /invalid registry host/],
  ['Foo/FarB', /not lowercase/],
  ['-ab.com/x', /invalid registry host/],
  ['ab-.com/x', /invalid registry host/],
  ['ab.-com/x', /invalid registry host/],
  ['ab.com-/x', /invalid registry host/],
  ['[fd00:1:2::3]75050/x', /invalid registry host/],
  ['[fd00:1:2::3]::75050/x', /invalid registry host/],
  ['[fd00:1:2::3%eth0]:75050/x', /invalid registry host/],
  ['fd00:1:2::3:75050/x', /invalid registry host/],
  [`registry.com:8080/myapp@sha256:badbadbadbad`, /invalid digest/],
  ['registry.com:8080/myapp:invalid~tag', /invalid tag "invalid~tag"/],
  ['bad_hostname.com:8080/myapp:tag', /invalid registry host/],
  // distribution accepts these with an empty domain (the whole text matches as a path), leaving the
  // registry to whoever dials the first component; sigpin refuses to guess.
  ['bad_hostname.com/myapp', /invalid registry host "bad_hostname.com"/],
  ['a.0__a/a', /invalid registry host/],
  [`localhost:http/name@${D}`, /invalid registry host/],
  ['registry.com:8080/myapp@bad', /invalid digest/],
  ['registry.com:8080/myapp@2bad', /invalid digest/],
  [`${HEX.toUpperCase()}`, /not lowercase/],
  // tags
  [`app:${'t'.repeat(129)}`, /invalid tag/],
  ['app:.tag', /invalid tag/],
  ['app:-tag', /invalid tag/],
  ['app:', /invalid tag ""/],
  // digests sigpin will not pin
  [`app@sha256:${HEX.toUpperCase()}`, /not exactly 64 lowercase hex/],
  [`app@sha256:${HEX}f`, /not exactly 64 lowercase hex/],
  [`app@sha256:${HEX.slice(1)}`, /not exactly 64 lowercase hex/],
  [`app@sha256+b64:${HEX}`, /algorithm "sha256\+b64"/],
  [`app@${D}@${D}`, /invalid digest/],
  [`app@sha256:`, /invalid digest/],
  ['app@', /invalid digest ""/],
  // whitespace and other junk is never trimmed away
  [' nginx', /invalid/],
  ['nginx ', /invalid/],
  ['nginx\n', /invalid/],
  ['nginx:1\u0000', /invalid tag/],
  ['ghcr.io/acme/äpp', /invalid repository path/],
  ['[ns=default]nginx', /invalid/],
  ['x'.repeat(MAX_REFERENCE_LENGTH + 1), /longer than 4096/],
];

describe('parseReference', () => {
  for (const [input, expected] of VALID) {
    it(`parses ${JSON.stringify(input.length > 80 ? input.slice(0, 80) + '...' : input)}`, () => {
      const ref = parseReference(input);
      assert.deepEqual({ ...ref }, { original: input, ...expected });
    });
  }

  for (const [input, message] of INVALID) {
    it(`rejects ${JSON.stringify(input.length > 80 ? input.slice(0, 80) + '...' : input)}`, () => {
      assertInvalidReference(() => parseReference(input), message);
    });
  }

  it('rejects values that are not strings', () => {
    for (const value of [undefined, null, 42, {}, ['nginx']]) {
      assertInvalidReference(() => parseReference(value as unknown as string), /is not a string/);
    }
  });

  it('returns a frozen object without keys for absent parts', () => {
    const ref = parseReference(`nginx@${D}`);
    assert.ok(Object.isFrozen(ref));
    assert.equal('tag' in ref, false);
    assert.equal('digest' in parseReference('nginx'), false);
  });

  it('keeps error messages short and quoted whatever the input', () => {
    const input = `${'a'.repeat(300)}"\n:bad tag`;
    const err = assertInvalidReference(() => parseReference(input), /invalid tag/);
    assert.ok(err.message.length < 400, err.message);
    assert.equal(err.message.includes('\n'), false);
    assert.equal(err.toWire().startsWith('INVALID_REFERENCE: image reference "aaa'), true);
  });

  it('accepts a reference of exactly the maximum length', () => {
    const host = `${'h'.repeat(60)}.`.repeat(60);
    const input = `${host}${'x'.repeat(MAX_REFERENCE_LENGTH - host.length - 2)}/a`;
    assert.equal(input.length, MAX_REFERENCE_LENGTH);
    assert.equal(parseReference(input).repository, 'a');
  });
});

// normalize_test.go TestParseRepositoryInfo, TestNormalizedSplitHostname, TestParseDockerRef, plus the
// host-case rule sigpin adds: equivalent spellings must end at the same canonical reference.
const NORMALIZED: ReadonlyArray<[string[], string]> = [
  [['localhost/fooo'], 'localhost/fooo:latest'],
  [['localhost/fooo/bar'], 'localhost/fooo/bar:latest'],
  [['LOCALDOMAIN/fooo'], 'LOCALDOMAIN/fooo:latest'],
  [['LOCALDOMAIN/fooo/bar'], 'LOCALDOMAIN/fooo/bar:latest'],
  [['fooo/bar', 'docker.io/fooo/bar', 'index.docker.io/fooo/bar'], 'docker.io/fooo/bar:latest'],
  [
    ['ubuntu', 'library/ubuntu', 'docker.io/library/ubuntu', 'docker.io/ubuntu'],
    'docker.io/library/ubuntu:latest',
  ],
  [['nonlibrary/ubuntu', 'docker.io/nonlibrary/ubuntu'], 'docker.io/nonlibrary/ubuntu:latest'],
  [['other/library', 'docker.io/other/library'], 'docker.io/other/library:latest'],
  [['127.0.0.1:8000/private/moonbase'], '127.0.0.1:8000/private/moonbase:latest'],
  [['127.0.0.1:8000/privatebase'], '127.0.0.1:8000/privatebase:latest'],
  [['example.com/private/moonbase'], 'example.com/private/moonbase:latest'],
  [['example.com:8000/privatebasee'], 'example.com:8000/privatebasee:latest'],
  [
    ['ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base', 'index.docker.io/library/ubuntu-12.04-base'],
    'docker.io/library/ubuntu-12.04-base:latest',
  ],
  [['library/foo/bar', 'docker.io/library/foo/bar'], 'docker.io/library/foo/bar:latest'],
  [['store/foo/bar', 'docker.io/store/foo/bar'], 'docker.io/store/foo/bar:latest'],
  [['Foo/bar'], 'Foo/bar:latest'],
  [['FOO/bar'], 'FOO/bar:latest'],
  [['test_com/foo'], 'docker.io/test_com/foo:latest'],
  [['test-com:8080/foo'], 'test-com:8080/foo:latest'],
  [['xn--n3h.com:18080/foo'], 'xn--n3h.com:18080/foo:latest'],
  [['gcr.io/library/busybox'], 'gcr.io/library/busybox:latest'],
  [['ghcr.io/app'], 'ghcr.io/app:latest'],
  [
    ['busybox:latest', 'docker.io/busybox:latest', 'library/busybox:latest'],
    'docker.io/library/busybox:latest',
  ],
  [[`busybox@${D}`, `docker.io/library/busybox@${D}`], `docker.io/library/busybox@${D}`],
  // Both are kept (the digest is what gets resolved); ParseDockerRef would drop the tag.
  [[`busybox:latest@${D}`], `docker.io/library/busybox:latest@${D}`],
  // Hosts are case-insensitive, so their case must not change which policy applies.
  [['GHCR.IO/acme/app', 'Ghcr.io/acme/app', 'ghcr.io/acme/app'], 'ghcr.io/acme/app:latest'],
  [['Index.Docker.IO/nginx', 'DOCKER.IO/nginx', 'nginx'], 'docker.io/library/nginx:latest'],
  [['LOCALHOST:5000/app', 'localhost:5000/app'], 'localhost:5000/app:latest'],
  [['LocalHost/app'], 'localhost/app:latest'],
  [['[FC00::1]:5000/app', '[fc00::1]:5000/app'], '[fc00::1]:5000/app:latest'],
];

describe('normalization', () => {
  for (const [inputs, canonical] of NORMALIZED) {
    for (const input of inputs) {
      it(`${input} -> ${canonical}`, () => {
        const ref = parseReference(input);
        assert.equal(canonicalReference(ref), canonical);
        assert.equal(ref.original, input);
      });
    }
  }
});

describe('repositoryName', () => {
  it('joins registry and repository, without tag or digest', () => {
    assert.equal(repositoryName(parseReference(`nginx:1.25@${D}`)), 'docker.io/library/nginx');
    assert.equal(repositoryName(parseReference('GHCR.IO/acme/app:1')), 'ghcr.io/acme/app');
    assert.equal(repositoryName(parseReference('[::1]:5000/a/b')), '[::1]:5000/a/b');
  });
});

describe('canonicalReference', () => {
  it('omits the tag when only a digest was given', () => {
    assert.equal(canonicalReference(parseReference(`app@${D}`)), `docker.io/library/app@${D}`);
  });
});

describe('pinnedImage', () => {
  const cases: ReadonlyArray<[string, string]> = [
    ['nginx', `nginx@${D}`],
    ['nginx:1.25', `nginx:1.25@${D}`],
    ['GHCR.IO/acme/app:1', `GHCR.IO/acme/app:1@${D}`],
    ['[::1]:5000/app:v1', `[::1]:5000/app:v1@${D}`],
    ['localhost:5000/app', `localhost:5000/app@${D}`],
    [`nginx@${D2}`, `nginx@${D2}`],
    [`nginx:1.25@${D2}`, `nginx:1.25@${D2}`],
    [`nginx:1.25@${D}`, `nginx:1.25@${D}`],
  ];
  for (const [input, pinned] of cases) {
    it(`${input} -> ${pinned}`, () => {
      assert.equal(pinnedImage(parseReference(input), D), pinned);
    });
  }

  it('pins to something that parses back to the same repository, tag and digest', () => {
    const ref = parseReference('ghcr.io/acme/app:1.2');
    const pinned = parseReference(pinnedImage(ref, D));
    assert.deepEqual(
      [pinned.registry, pinned.repository, pinned.tag, pinned.digest],
      ['ghcr.io', 'acme/app', '1.2', D]
    );
  });

  it('refuses a malformed digest as an internal (transient) error', () => {
    const ref = parseReference('nginx:1.25');
    for (const bad of ['', HEX, `sha256:${HEX.toUpperCase()}`, `sha512:${HEX}${HEX}`, `${D}\n`]) {
      assert.throws(
        () => pinnedImage(ref, bad),
        (err: unknown) => err instanceof SigpinError && err.code === 'INTERNAL' && err.transient
      );
    }
  });
});

describe('registryEndpoint', () => {
  const cases: ReadonlyArray<[string, string]> = [
    ['docker.io', 'registry-1.docker.io'],
    ['ghcr.io', 'ghcr.io'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['[::1]:5000', '[::1]:5000'],
    ['localhost:5000', 'localhost:5000'],
  ];
  for (const [registry, endpoint] of cases) {
    it(`${registry} -> ${endpoint}`, () => assert.equal(registryEndpoint(registry), endpoint));
  }

  it('dials Docker Hub for every spelling of it', () => {
    for (const input of ['nginx', 'index.docker.io/library/nginx', 'DOCKER.IO/library/nginx']) {
      assert.equal(registryEndpoint(parseReference(input).registry), 'registry-1.docker.io');
    }
  });
});

describe('isSha256Digest', () => {
  it('accepts only sha256 with 64 lowercase hex characters', () => {
    assert.equal(isSha256Digest(D), true);
    for (const bad of [HEX, `sha256:${HEX.toUpperCase()}`, `sha256:${HEX}0`, `sha384:${HEX}`, ` ${D}`]) {
      assert.equal(isSha256Digest(bad), false, bad);
    }
  });
});
