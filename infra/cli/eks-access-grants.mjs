#!/usr/bin/env node
// The package's bin: runs the TypeScript CLI through tsx (a devDependency; the CLI runs from a checkout).
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
