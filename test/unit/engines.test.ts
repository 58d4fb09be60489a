import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

// A fresh `npm install` on a Node version `engines` allows must print no EBADENGINE warning:
// every locked package has to accept every Node version the project claims to run on.
const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

describe('engines', () => {
  it('declares the Node versions Lambda runs (nodejs22.x)', () => {
    expect(semver.validRange(manifest.engines.node)).not.toBeNull();
    expect(semver.satisfies('22.22.2', manifest.engines.node)).toBe(true);
  });

  it('agrees with every locked dependency', () => {
    // prepare
    const ranges = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && !Array.isArray(entry.engines) && entry.engines?.node)
      .map(([path, entry]) => ({ name: path.replace(/^.*node_modules\//, ''), range: (entry.engines as { node: string }).node }));
    // act
    const disagreeing = ranges.filter(({ range }) => !semver.subset(manifest.engines.node, range)).map(({ name, range }) => `${name}: ${range}`);
    // assess
    expect(ranges.length).toBeGreaterThan(10);
    expect(disagreeing).toEqual([]);
  });
});
