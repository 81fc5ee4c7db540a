/**
 * The shell: sign-in until a key is known, then the navigation and the page for the current path.
 * Pages are loaded on demand, so the first load is only this shell.
 */
import { lazy, Suspense, useEffect, useRef, type ComponentType } from 'react';
import { markNavigation, Loading } from './components/page.tsx';
import { useAuth } from './lib/auth.tsx';
import { Link, match, navigate, useLocation } from './lib/router.tsx';
import { SignIn } from './sign-in.tsx';

type Params = Record<string, string>;
type PageModule = { default: ComponentType<{ params: Params }> };

/** A page loaded on demand; its params are those its route pattern names (matched below). */
const page = <P,>(load: () => Promise<{ default: ComponentType<{ params: P }> }>) => lazy(load as unknown as () => Promise<PageModule>);

const ROUTES: readonly { pattern: string; component: ReturnType<typeof page>; section: string }[] = [
  { pattern: '/experiments', component: page(() => import('./pages/experiments.tsx')), section: 'experiments' },
  { pattern: '/experiments/:name', component: page(() => import('./pages/runs.tsx')), section: 'experiments' },
  { pattern: '/experiments/:name/compare', component: page(() => import('./pages/compare.tsx')), section: 'experiments' },
  { pattern: '/experiments/:name/runs/:run', component: page(() => import('./pages/run.tsx')), section: 'experiments' },
  { pattern: '/runs/:run', component: page(() => import('./pages/run-by-id.tsx')), section: 'experiments' },
  { pattern: '/models', component: page(() => import('./pages/models.tsx')), section: 'models' },
  { pattern: '/models/:name', component: page(() => import('./pages/model.tsx')), section: 'models' },
  { pattern: '/training', component: page(() => import('./pages/training.tsx')), section: 'training' },
  { pattern: '/training/:job', component: page(() => import('./pages/job.tsx')), section: 'training' },
  { pattern: '/datasets', component: page(() => import('./pages/datasets.tsx')), section: 'datasets' },
  { pattern: '/datasets/:name', component: page(() => import('./pages/dataset.tsx')), section: 'datasets' },
  { pattern: '/serving', component: page(() => import('./pages/serving.tsx')), section: 'serving' },
  { pattern: '/drift', component: page(() => import('./pages/drift.tsx')), section: 'drift' },
];

const NAV = [
  { to: '/experiments', label: 'Experiments', section: 'experiments' },
  { to: '/models', label: 'Registry', section: 'models' },
  { to: '/training', label: 'Training', section: 'training' },
  { to: '/datasets', label: 'Datasets', section: 'datasets' },
  { to: '/serving', label: 'Serving', section: 'serving' },
  { to: '/drift', label: 'Drift', section: 'drift' },
];

function Redirect({ to }: { readonly to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

export function App() {
  const auth = useAuth();
  const { path } = useLocation();
  const first = useRef(true);
  useEffect(() => {
    if (first.current) first.current = false;
    else markNavigation();
  }, [path]);

  if (auth.status !== 'signed-in') {
    return (
      <div className="shell">
        <header className="topbar">
          <span className="brand">modelplane</span>
        </header>
        <main id="main" className="content">
          {auth.status === 'checking' ? <Loading what="your key's role" /> : <SignIn />}
        </main>
      </div>
    );
  }

  if (path === '/' || path === '') return <Redirect to="/experiments" />;
  let found: { component: ReturnType<typeof page>; params: Params; section: string } | undefined;
  for (const r of ROUTES) {
    const params = match(r.pattern, path);
    if (params !== undefined) {
      found = { component: r.component, params, section: r.section };
      break;
    }
  }
  const Current = found?.component;

  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">modelplane</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.to}>
                <Link to={n.to} aria-current={found?.section === n.section ? 'page' : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span>
            {auth.who?.name} · <strong>{auth.who?.role}</strong>
          </span>
          <button type="button" onClick={auth.signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" className="content">
        {Current === undefined ? (
          <>
            <h1>Not found</h1>
            <p>
              There is no page at <code>/ui{path}</code>. <Link to="/experiments">Go to the experiments</Link>.
            </p>
          </>
        ) : (
          <Suspense fallback={<Loading what="page" />}>
            <Current key={path} params={found!.params} />
          </Suspense>
        )}
      </main>
    </div>
  );
}
