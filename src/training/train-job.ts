/**
 * The job kinds of modelplane, as the queue sees them. Kept apart from the pipeline so that the
 * API process, which only queues jobs, never loads the training code: worker processes import the
 * handler module by URL.
 */
import { siblingModule } from '../util/threads.ts';
import { JobCatalogue, type JobKind } from './handlers.ts';

/** `train`: one training job (see pipeline.ts), handled by the module `train-handler`. */
export const TRAIN_JOB: JobKind = { kind: 'train', module: siblingModule(import.meta.url, './train-handler') };

/** Every kind a modelplane server or worker runs. */
export function trainingCatalogue(): JobCatalogue {
  return new JobCatalogue([TRAIN_JOB]);
}
