#!/usr/bin/env node
// kubectl-bg as installed by npm (`npm i -g`): runs on whatever `node` is first on PATH.
// The plugin needs Node.js 24 or later; on an older Node this file, written so that any
// Node can parse it, says so in one line (exit 1) instead of a stack trace from deep in
// a dependency. The single executable (npm run plugin:dist, or krew) needs no Node at all.
'use strict';
var MIN = 24;
var major = Number(process.versions.node.split('.')[0]);
if (!(major >= MIN)) {
  process.stderr.write(
    'kubectl-bg: needs Node.js ' +
      MIN +
      ' or later, and the node on PATH (' +
      process.execPath +
      ') is ' +
      process.version +
      '; install Node.js ' +
      MIN +
      ', or use the single executable, which needs no Node (https://github.com/kube-bluegreen/kube-bluegreen#kubectl-bg)\n',
  );
  process.exit(1);
}
var entry = require('path').join(__dirname, '..', '..', 'dist', 'plugin', 'src', process.env.KBG_PLUGIN_ENTRY || 'main.js');
// import() through Function: an old Node that cannot parse import() still reaches the check above.
new Function('u', 'return import(u)')(require('url').pathToFileURL(entry).href).catch(function (e) {
  process.stderr.write(
    'kubectl-bg: cannot load ' + entry + ': ' + (e && e.message) + (e && e.code === 'ERR_MODULE_NOT_FOUND' ? ' (run npm run build first)' : '') + '\n',
  );
  process.exit(1);
});
