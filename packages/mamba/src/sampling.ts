// Choosing the next token from logits: the host sampler of @offramp/core (greedy, temperature, top-k,
// top-p, seeded), shared by every language model; `argmax` is kept as this package's name for argmaxOf.
export { argmaxOf as argmax, checkSampling, type SamplingOptions, sampleToken } from '@offramp/core';
