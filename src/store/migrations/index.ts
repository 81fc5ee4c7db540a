import type { Migration } from 'kysely';
import * as foundation from './001-foundation.ts';
import * as registry from './002-registry.ts';
import * as tracking from './003-tracking.ts';
import * as jobs from './004-jobs.ts';
import * as datasets from './005-datasets.ts';
import * as drift from './006-drift.ts';
import * as driftClaims from './007-drift-claims.ts';
import * as predictionLogBlocks from './008-prediction-log-blocks.ts';

/**
 * Every migration in order. Names sort lexically; never rename or edit a landed migration, add a
 * new one instead.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '001-foundation': foundation,
  '002-registry': registry,
  '003-tracking': tracking,
  '004-jobs': jobs,
  '005-datasets': datasets,
  '006-drift': drift,
  '007-drift-claims': driftClaims,
  '008-prediction-log-blocks': predictionLogBlocks,
};
