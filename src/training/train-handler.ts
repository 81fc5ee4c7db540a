/**
 * The `train` job handler, as worker processes load it (see train-job.ts and worker.child.ts):
 * each worker opens the data backends and services once, then runs one job at a time through the
 * pipeline.
 */
import type { Logger } from 'pino';
import { openBackends, type Backends } from '../backends.ts';
import type { Config } from '../config.ts';
import { onnxRuntime } from '../onnx/runtime.ts';
import { createDataServices } from '../services.ts';
import type { JobHandler } from './handlers.ts';
import type { TrainJob } from './job.types.ts';
import { runTrainingJob, type PipelineDeps } from './pipeline.ts';

interface ThreadDeps extends PipelineDeps {
  readonly backends: Backends;
}

export const handler: JobHandler<TrainJob, ThreadDeps> = {
  async createDeps(config: Config, log: Logger) {
    // The API (or worker) process applied the migrations before it started any worker.
    const backends = await openBackends(config, log, { parts: 'data', migrate: false });
    return { backends, services: createDataServices(backends, config, log), onnx: onnxRuntime, log, maxModelBytes: config.trainingMaxModelBytes };
  },
  closeDeps: (deps) => deps.backends.close(),
  run: runTrainingJob,
};
