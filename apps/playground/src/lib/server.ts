// Server mode: the classify view sends its input to an `offramp serve` (started with --cors) instead of
// running the model in the page. The model names requested are the checkpoint names (fashion-cnn,
// imdb-encoder): serve them under those names, e.g. `offramp serve -m fashion-cnn=checkpoints/fashion-cnn --cors`.

export interface ServerClassifyResult {
  prediction: number;
  label: string;
  probabilities: number[];
  exit_block: number;
  exit_index: number;
  num_exits: number;
  flops: number;
  cost_fraction: number;
  trace?: { maxProb?: (number | null)[]; argmax?: (number | null)[] };
}

/** POST /v1/classify; throws an Error with the server's own message on a refusal. */
export async function classifyOnServer(
  base: string,
  model: string,
  input: { image: number[] } | { text: string },
  policy: string,
): Promise<ServerClassifyResult> {
  let url: URL;
  try {
    url = new URL('v1/classify', base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new Error(
      `server: '${base}' is not a URL; expected the address of offramp serve, e.g. http://127.0.0.1:8080`,
    );
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, input, policy, trace: true, truncate: true }),
    });
  } catch (e) {
    throw new Error(
      `server: no answer from ${url.origin} (${(e as Error).message}); is offramp serve running there with --cors?`,
    );
  }
  const body = (await res.json().catch(() => null)) as (ServerClassifyResult & { error?: { message?: string } }) | null;
  if (!res.ok || !body)
    throw new Error(`server: HTTP ${res.status}${body?.error?.message ? `: ${body.error.message}` : ''}`);
  return body;
}
