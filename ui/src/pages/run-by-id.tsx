/** A run addressed by id alone (from a model version's lineage): finds its experiment, then shows it there. */
import { useEffect } from 'react';
import { api, unwrap } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { Loading, Page } from '../components/page.tsx';
import { navigate, seg } from '../lib/router.tsx';
import { useData } from '../lib/use-data.ts';

export default function RunByIdPage({ params }: { params: { run: string } }) {
  const found = useData(
    async (signal) => {
      const run = await unwrap(api.GET('/runs/{run_id}', { params: { path: { run_id: params.run } }, signal }));
      const experiment = await unwrap(api.GET('/experiments/{name}', { params: { path: { name: run.experiment_id } }, signal }));
      return `/experiments/${seg(experiment.name)}/runs/${seg(run.run_id)}`;
    },
    [params.run],
  );
  useEffect(() => {
    if (found.data !== undefined) navigate(found.data, { replace: true });
  }, [found.data]);
  return (
    <Page title="Run">
      <ErrorView error={found.error} />
      {found.loading && <Loading what="the run" />}
    </Page>
  );
}
