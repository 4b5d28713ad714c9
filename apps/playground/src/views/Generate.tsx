export function GenerateView(_props: { mode?: string }) {
  return <p className="muted">not built yet</p>;
}
