#!/usr/bin/env node
// Built by `npm install` / `npm ci` (the prepare script compiles src/ to dist/).
import '../dist/cli/bin.js';
