import { useEffect, useState } from 'react';
import { type AdapterInfo, adapterInfo, getDevice, hasWebGpu } from './lib/runtime.ts';
import { errorText, type Mode } from './lib/state.ts';
import { BatchView } from './views/Batch.tsx';
import { ClassifyView } from './views/Classify.tsx';
import { EnhanceView } from './views/Enhance.tsx';
import { GenerateView } from './views/Generate.tsx';
import { ParetoView } from './views/Pareto.tsx';
import { PolicyView } from './views/Policy.tsx';

const VIEWS = ['classify', 'batch', 'pareto', 'generate', 'enhance', 'policy'] as const;
type View = (typeof VIEWS)[number];
/** The views that run on an `offramp serve` when its URL is given (also without WebGPU in the page). */
const SERVER_VIEWS: readonly View[] = ['classify', 'batch', 'pareto', 'generate'];

function initialView(): View {
  const h = location.hash.slice(1);
  return (VIEWS as readonly string[]).includes(h) ? (h as View) : 'classify';
}

export function App() {
  const [view, setView] = useState<View>(initialView);
  const [mode, setMode] = useState<Mode>('device');
  const [server, setServer] = useState('');
  const [adapter, setAdapter] = useState<AdapterInfo | null>(null);
  const [gpuError, setGpuError] = useState<string | null>(hasWebGpu() ? null : 'no navigator.gpu');

  useEffect(() => {
    if (!hasWebGpu()) return;
    getDevice().then(
      (d) => setAdapter(adapterInfo(d)),
      (e) => setGpuError(errorText(e)),
    );
  }, []);

  const go = (v: View) => {
    setView(v);
    history.replaceState(null, '', `#${v}`);
  };

  return (
    <>
      <header>
        <h1>Offramp playground</h1>
        <nav>
          {VIEWS.map((v) => (
            <button
              type="button"
              key={v}
              className={v === view ? 'active' : ''}
              data-testid={`tab-${v}`}
              onClick={() => go(v)}
            >
              {v}
            </button>
          ))}
        </nav>
        <label>
          mode{' '}
          <select data-testid="mode" value={mode} onChange={(e) => setMode(e.target.value as Mode)}>
            <option value="device">device (policy in WGSL, one readback)</option>
            <option value="host">host (policy in TypeScript, readback per exit)</option>
          </select>
        </label>
        <input
          data-testid="server"
          placeholder="offramp serve URL (empty: run here)"
          value={server}
          onChange={(e) => setServer(e.target.value.trim())}
          title="run the classify, batch, pareto and generate views on a server (offramp serve --cors) instead of in the page"
          size={28}
        />
        <span className="adapter" data-testid="adapter">
          {adapter ? adapter.text : gpuError ? 'no WebGPU' : 'adapter…'}
        </span>
      </header>
      <main>
        {gpuError && (
          <div className="notice" data-testid="no-webgpu">
            WebGPU is not available in this browser ({gpuError}). The models run on WebGPU only; try a browser with
            WebGPU enabled (Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu). The policy editor still works:
            it runs on the CPU; with an offramp serve URL in the header, the classify, batch, pareto and generate views
            run on that server.
          </div>
        )}
        {view === 'classify' && (!gpuError || server) && <ClassifyView mode={mode} server={server} />}
        {view === 'batch' && (!gpuError || server) && <BatchView mode={mode} server={server} />}
        {view === 'pareto' && (!gpuError || server) && <ParetoView mode={mode} server={server} />}
        {view === 'generate' && (!gpuError || server) && <GenerateView server={server} />}
        {view === 'enhance' && !gpuError && <EnhanceView mode={mode} />}
        {(view === 'policy' || (gpuError && !(server && SERVER_VIEWS.includes(view)))) && <PolicyView />}
      </main>
    </>
  );
}
