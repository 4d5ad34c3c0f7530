#!/usr/bin/env node
// The `personas` command: registers tsx's loader, then runs the TypeScript entry as is (no build step).
import { register } from 'tsx/esm/api';

register();
await import('./personas.ts');
