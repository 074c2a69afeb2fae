// The local console: tenants with their health, and one execution's states as a timeline
// (the local stand-in for the Step Functions console's execution history). It calls the
// control plane's API with the operator token given in the URL fragment (never sent to the
// server as part of the URL): `clonectl console` prints such a link.

import htm from 'htm';
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';

const html = htm.bind(h);
const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');

async function api(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
  return body;
}

/** Each state's first entry and last exit, in the order they were entered. */
function spans(execution) {
  const out = new Map();
  for (const e of execution.events) {
    if (!e.state) continue;
    const t = Date.parse(e.timestamp);
    const s = out.get(e.state) ?? { name: e.state, start: t, end: t, failed: false };
    if (e.type === 'StateEntered') s.start = Math.min(s.start, t);
    if (e.type === 'StateExited' || e.type === 'StateFailed') s.end = Math.max(s.end, t);
    if (e.type === 'StateFailed') s.failed = true;
    out.set(e.state, s);
  }
  return [...out.values()];
}

function Timeline({ name }) {
  const [execution, setExecution] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setExecution(null);
    api(`/executions/${encodeURIComponent(name)}`).then(setExecution, (e) => setError(e.message));
  }, [name]);
  if (error) return html`<p class="error">${error}</p>`;
  if (!execution) return html`<p class="muted">Loading ${name}…</p>`;
  const start = Date.parse(execution.startedAt);
  const end = execution.stoppedAt ? Date.parse(execution.stoppedAt) : Date.now();
  const total = Math.max(end - start, 1);
  return html`<section class="timeline" data-execution=${execution.name}>
    <h2>${execution.name} <span class=${execution.status}>${execution.status}</span>
      <span class="muted"> ${(total / 1000).toFixed(2)} s</span></h2>
    ${execution.error ? html`<p class="error">${execution.error}: ${execution.cause}</p>` : null}
    ${spans(execution).map(
      (s) => html`<div class="step" data-state=${s.name}>
        <span>${s.name}</span>
        <span class="track"><span class=${`bar${s.failed ? ' failed' : ''}`}
          style=${`left:${((s.start - start) / total) * 100}%;width:${((s.end - s.start) / total) * 100}%`}></span></span>
        <span class="muted">${s.end - s.start} ms</span>
      </div>`,
    )}
  </section>`;
}

function App() {
  const [tenants, setTenants] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(params.get('execution'));
  useEffect(() => {
    const load = () =>
      api('/tenants').then(
        (b) => setTenants(b.tenants),
        (e) => setError(e.message),
      );
    load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }, []);
  if (!token)
    return html`<p class="error">No token: open the link that <code>clonectl console</code> prints.</p>`;
  if (error) return html`<p class="error">${error}</p>`;
  if (!tenants) return html`<p class="muted">Loading…</p>`;
  return html`<main>
    <h1>Clone Factory</h1>
    <table class="tenants">
      <thead><tr><th>Tenant</th><th>State</th><th>Health</th><th>Engine</th><th>Version</th><th>Placement</th><th>Latency</th></tr></thead>
      <tbody>${tenants.map(
        (
          t,
        ) => html`<tr class=${`tenant${t.executionName === selected ? ' selected' : ''}`} onClick=${() => setSelected(t.executionName)}>
          <td>${t.tenantId}</td><td class=${t.state}>${t.state}</td>
          <td class=${t.health?.status ?? ''} title=${(t.health?.problems ?? []).join('; ')}>${t.health?.status ?? '–'}</td>
          <td>${t.engine}</td><td>${t.version}</td><td>${t.placement}</td>
          <td>${t.health?.latencyMs !== undefined ? `${t.health.latencyMs} ms` : ''}</td>
        </tr>`,
      )}</tbody>
    </table>
    ${selected ? html`<${Timeline} name=${selected} />` : html`<p class="muted">Select a tenant to see its execution.</p>`}
  </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
