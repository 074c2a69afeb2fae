#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npx clonectl` works right after `npm ci`.
import { register } from 'tsx/esm/api';

// Locally we run on Node 20 on purpose; the SDK's notice about Node 22 is for Lambda.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('./clonectl.ts');
