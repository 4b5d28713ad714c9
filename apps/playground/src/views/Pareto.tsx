export function ParetoView(_props: { mode?: string }) {
  return <p className="muted">not built yet</p>;
}
