#!/usr/bin/env node
// Runs the TypeScript sources directly: Node >= 22.18 strips types natively, so development needs no build step.
// The container image runs the compiled provider/dist/main.js instead (`npm run build`), which starts leaner.
import '../src/main.ts';
