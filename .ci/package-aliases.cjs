// Resolve options for dependency-cruiser (read as a webpack config: its one way to take aliases).
// They map the package's own name, which the examples import as a user would, to the sources of
// each entry point, as package.json `exports` maps it to dist/ for Node: so the import graph
// shows which entry point each example uses, whether dist/ is built or not.
const path = require('node:path');

const root = path.join(__dirname, '..');
const ENTRY_POINTS = {
  tickraft: 'src/index.ts',
  'tickraft/tcp': 'src/tcp.ts',
  'tickraft/file': 'src/file.ts',
  'tickraft/testing': 'src/testing.ts',
  'tickraft/multi': 'src/multi.ts',
};

module.exports = {
  resolve: {
    alias: Object.fromEntries(Object.entries(ENTRY_POINTS).map(([name, file]) => [`${name}$`, path.join(root, file)])),
  },
};
