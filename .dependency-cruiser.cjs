// The layers of tickraft and who may import whom, checked by `npm run deps` (and .ci/run).
// docs/architecture.md draws the same layers. A rule names the layer it protects and why.
const NODE_MODULES = '^node_modules/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-is-pure',
      comment:
        'src/core is the Raft algorithm: no I/O, no clock, no randomness of its own. It imports only ' +
        'src/core: no other folder of src, no node: builtin, no npm package.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { pathNot: '^src/core/' },
    },
    {
      name: 'storage-imports-core-types',
      comment:
        'A Storage knows the core only by its types (Storage, LogEntry, Codec...); besides them it uses ' +
        'its own folder, the entries-in-columns form of src/encoding and node builtins, no npm package.',
      severity: 'error',
      from: { path: '^src/storage/' },
      to: {
        pathNot: ['^src/storage/', '^src/encoding/'],
        dependencyTypesNot: ['core', 'type-only'],
      },
    },
    {
      name: 'storage-imports-no-other-layer',
      comment: 'Even its types a Storage takes from src/core only.',
      severity: 'error',
      from: { path: '^src/storage/' },
      to: { path: '^src/', pathNot: '^src/(core|storage|encoding)/' },
    },
    {
      name: 'transport-imports-core-types',
      comment:
        'A transport knows the core by its types (Cluster, Message, Codec...) and uses one function of it, ' +
        'the message check of core/validate.ts, on everything it receives; besides, its own folder, the ' +
        'entries-in-columns form of src/encoding, node builtins and msgpackr (the default codec).',
      severity: 'error',
      from: { path: '^src/transport/' },
      to: {
        pathNot: ['^src/transport/', '^src/encoding/', '^src/core/validate\\.ts$', `${NODE_MODULES}msgpackr/`],
        dependencyTypesNot: ['core', 'type-only'],
      },
    },
    {
      name: 'transport-imports-no-other-layer',
      comment: 'Even its types a transport takes from src/core only.',
      severity: 'error',
      from: { path: '^src/transport/' },
      to: { path: '^src/', pathNot: '^src/(core|transport|encoding)/' },
    },
    {
      name: 'encoding-is-pure',
      comment:
        'src/encoding holds forms of the core\'s data that both the transport and the storage hand to a ' +
        'codec (entries in columns): pure functions over the core types, nothing else.',
      severity: 'error',
      from: { path: '^src/encoding/' },
      to: { pathNot: '^src/encoding/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'encoding-types-from-core',
      comment: 'Its types src/encoding takes from src/core only.',
      severity: 'error',
      from: { path: '^src/encoding/' },
      to: { path: '^src/', pathNot: '^src/(core|encoding)/' },
    },
    {
      name: 'driver-imports-core-and-memory-storage',
      comment:
        'src/replica, the driver, talks to the algorithm (src/core), is watched through src/observe and ' +
        'defaults to MemoryStorage; it knows ' +
        'no transport, no file and no simulator. Its one npm package is async-mutex (the lock); of Node, ' +
        'it may use what a tick loop needs (timers, util), never the network or the disk.',
      severity: 'error',
      from: { path: '^src/replica/' },
      to: {
        pathNot: [
          '^src/(core|replica|observe)/',
          '^src/storage/memory\\.ts$',
          `${NODE_MODULES}async-mutex/`,
          '^(timers|util)$',
        ],
      },
    },
    {
      name: 'observe-reads-core',
      comment:
        'src/observe turns what the algorithm did in a tick into events, log lines and the status: it ' +
        "reads src/core and nothing else (no node builtin, no npm package; the logger is the application's).",
      severity: 'error',
      from: { path: '^src/observe/' },
      to: { pathNot: '^src/(core|observe)/' },
    },
    {
      name: 'proposals-import-core',
      comment:
        'src/proposals, the propose helper, is built on the public contract: it takes types and errors ' +
        'from src/core, the StateMachine interface it wraps, and reaches the replica only through the ' +
        'small ProposalHost interface.',
      severity: 'error',
      from: { path: '^src/proposals/' },
      to: { pathNot: ['^src/(core|proposals)/', '^src/replica/state-machine\\.ts$'] },
    },
    {
      name: 'sim-imports-core',
      comment: 'src/sim, the seeded in-process simulator, is pure like the core: src/core and itself only.',
      severity: 'error',
      from: { path: '^src/sim/' },
      to: { pathNot: '^src/(core|sim)/' },
    },
    {
      name: 'testing-imports-core-types',
      comment:
        'src/testing, the Storage conformance suite, ships in the package and runs in any test runner: ' +
        'it knows a Storage by the core types, draws from the seeded PRNG of src/sim/random.ts (pure) and ' +
        'uses node builtins; no test framework, no npm package.',
      severity: 'error',
      from: { path: '^src/testing/' },
      to: {
        pathNot: ['^src/testing/', '^src/sim/random\\.ts$'],
        dependencyTypesNot: ['core', 'type-only'],
      },
    },
    {
      name: 'testing-imports-no-other-layer',
      comment: 'Even its types the conformance suite takes from src/core only.',
      severity: 'error',
      from: { path: '^src/testing/' },
      to: { path: '^src/', pathNot: ['^src/(core|testing)/', '^src/sim/random\\.ts$'] },
    },
    {
      name: 'multi-hosts-replicas',
      comment:
        'src/multi, the host of many groups in one process, runs each group as an ordinary Replica: it ' +
        'builds on src/replica and takes types from src/core, src/observe and (for its LocalNetwork ' +
        'adapter) src/sim. It does not reach into the algorithm: src/core stays unchanged. No node ' +
        'builtin but timers, no npm package. Its TCP network (src/multi/tcp.ts) builds on TcpCluster and ' +
        "on the appends' wire form (compact-append.ts) and the default codec (codec.ts).",
      severity: 'error',
      from: { path: '^src/multi/' },
      to: {
        pathNot: ['^src/(multi|replica)/', '^src/transport/(tcp|compact-append|codec)\\.ts$', '^(timers)$'],
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'multi-entry-loads-no-transport',
      comment: 'tickraft/multi loads no network module: its TCP network is exported by tickraft/tcp.',
      severity: 'error',
      from: { path: '^src/multi\\.ts$' },
      to: { path: '^src/multi/tcp\\.ts$' },
    },
    {
      name: 'multi-types-only-from-core-observe-sim',
      comment: 'Even its types src/multi takes from src/core, src/observe, src/replica, src/sim and src/transport only.',
      severity: 'error',
      from: { path: '^src/multi/' },
      to: { path: '^src/', pathNot: '^src/(core|observe|replica|sim|multi|transport)/' },
    },
    {
      name: 'root-loads-no-transport',
      comment:
        'The root entry (and tickraft/file, tickraft/testing) must not load node:net, node:tls or msgpackr: ' +
        'from src/transport they may take types only. TcpCluster is tickraft/tcp (src/tcp.ts).',
      severity: 'error',
      from: { path: '^src/(index|file|testing|multi)\\.ts$' },
      to: { path: '^src/transport/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'src-imports-no-docs-or-tests',
      comment: 'The library ships alone: nothing in src/ imports the examples, the tests or the benches.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(docs|tests)/' },
    },
    {
      name: 'examples-use-the-package',
      comment:
        "The examples are written as a user writes them: through the package's public entry points " +
        "('tickraft', 'tickraft/tcp'...), never src/ or tests/.",
      severity: 'error',
      from: { path: '^docs/examples/' },
      to: { path: '^(src|tests)/', pathNot: '^src/(index|tcp|file|testing|multi)\\.ts$' },
    },
    {
      name: 'benches-are-leaves',
      comment: 'The benches are programs: nothing outside tests/bench imports them.',
      severity: 'error',
      from: { pathNot: '^tests/bench/' },
      to: { path: '^tests/bench/' },
    },
    {
      name: 'no-unresolvable',
      comment: 'Every import resolves, to a file of this repository, a builtin or an installed package.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-dist',
      comment: 'The sources never import the build output (the entry-point aliases above map to src/).',
      severity: 'error',
      from: {},
      to: { path: '^dist/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle makes a layer impossible to read on its own; reported, not (yet) failed.',
      severity: 'warn',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    // 'tickraft', 'tickraft/tcp'... (the package's own name, as the examples import it) to src/.
    webpackConfig: { fileName: '.ci/package-aliases.cjs' },
    // See `import type` as its own kind of dependency (the storage and transport rules rely on it).
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
