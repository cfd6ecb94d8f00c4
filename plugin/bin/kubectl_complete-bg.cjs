#!/usr/bin/env node
// kubectl_complete-bg as installed by npm: the same Node check as kubectl-bg.cjs, then complete.js.
'use strict';
process.env.KBG_PLUGIN_ENTRY = 'complete.js';
require('./kubectl-bg.cjs');
