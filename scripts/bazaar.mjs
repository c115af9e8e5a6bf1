#!/usr/bin/env node
// The `bazaar` CLI entry point. The project is TypeScript run through tsx, so
// register its loader before importing the real dispatcher.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
