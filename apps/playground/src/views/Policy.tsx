export function PolicyView(_props: { mode?: string }) {
  return <p className="muted">not built yet</p>;
}
