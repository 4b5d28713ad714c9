import type { PolicyReport } from '@offramp/policies/testing';
import { useState } from 'react';
import { compilePolicy, EXAMPLE_POLICY, parseOptionList } from '../lib/policy-editor.ts';
import { getDevice, hasWebGpu } from '../lib/runtime.ts';
import { errorText } from '../lib/state.ts';

/**
 * A policy written in the page (a definePolicy expression) checked by the conformance kit of
 * @offramp/policies/testing, in the browser; host/device agreement runs on WebGPU when there is one.
 */
export function PolicyView() {
  const [text, setText] = useState(EXAMPLE_POLICY);
  const [options, setOptions] = useState('[{"threshold": 0.9}, {"threshold": 0.5}]');
  const [report, setReport] = useState<PolicyReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const check = async () => {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      const factory = compilePolicy(text);
      const validOptions = parseOptionList(options);
      const { checkPolicy } = await import('@offramp/policies/testing');
      const gpu = hasWebGpu() ? await getDevice().catch(() => undefined) : undefined;
      setReport(await checkPolicy(factory, { validOptions, gpu }));
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="panel">
      <p>
        A policy as a <code>definePolicy(...)</code> expression (<code>definePolicy</code> and <code>wgslFloat</code>{' '}
        are in scope), checked by the conformance kit: shape, determinism, batch invariance, state isolation, the forced
        last exit and, with WebGPU, host/device agreement.
      </p>
      <textarea
        rows={20}
        value={text}
        onChange={(e) => setText(e.target.value)}
        data-testid="policy-text"
        spellCheck={false}
      />
      {error && (
        <div className="error" data-testid="policy-error">
          {error}
        </div>
      )}
      <p>
        <label>
          valid options (JSON){' '}
          <input value={options} onChange={(e) => setOptions(e.target.value)} size={50} data-testid="policy-options" />
        </label>
        <button type="button" onClick={check} disabled={busy} data-testid="policy-check">
          run the conformance kit
        </button>
      </p>
      {report && (
        <div data-testid="policy-report" data-ok={report.ok ? '1' : '0'}>
          <p>
            <b>{report.policy}</b>: {report.ok ? 'conforms' : 'does not conform'}
          </p>
          <table>
            <tbody>
              {report.checks.map((c) => (
                <tr key={c.name} data-testid={`check-${c.ok ? 'ok' : c.skipped ? 'skipped' : 'failed'}`}>
                  <td>{c.skipped ? '–' : c.ok ? '✓' : '✗'}</td>
                  <td style={{ textAlign: 'left' }}>{c.name}</td>
                  <td style={{ textAlign: 'left' }} className={c.ok || c.skipped ? 'muted' : 'error'}>
                    {(c.message ?? '').split('\n')[0]}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
