#!/usr/bin/env node
// Runs the TypeScript sources directly: Node >= 22.18 strips types natively, so no build step is needed.
import { main } from '../src/cli.ts';

process.exitCode = await main(process.argv.slice(2));
