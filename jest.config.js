// Two sets: unit (test/unit, mirrors lib/: pure logic, no root, no system
// changes, seconds) and system (test/system: real namespaces, plugins,
// nftables/iptables, helpers; root). System files touch shared host state, so
// each uses its own names, subnets and ports and files can run in parallel.
const common = {
  testEnvironment: 'node',
  testMatch: ['**/*.test.ts'],
  testTimeout: 60000,
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
};

module.exports = {
  testTimeout: 60000,
  maxWorkers: 2,
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/test/unit'] },
    { ...common, displayName: 'system', roots: ['<rootDir>/test/system'] },
  ],
};
