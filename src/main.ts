/**
 * The `modelplane` command. Turns on V8's code cache on disk first (Node 22.1 and later; a no-op
 * before), then loads the CLI: a restart then compiles none of the modules it compiled last time,
 * which is most of what a restart spends before it listens. Everything else is in cli.ts.
 */
import module from 'node:module';

(module as { enableCompileCache?: (this: void) => unknown }).enableCompileCache?.();
await import('./cli.ts');
