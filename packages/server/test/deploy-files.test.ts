// The deploy recipes that CI cannot run (no Docker, no Kubernetes here), checked statically:
// deploy/Dockerfile parsed with dockerfile-ast (pinned base, non-root user, offramp serve on the EXPOSEd
// port, a health check on /health, COPY sources that exist and are not excluded by .dockerignore), and
// deploy/k8s/*.yaml validated against the Kubernetes API schemas of kubernetes-models, with probes, ports,
// labels and the ConfigMap cross-checked. The HAProxy recipe runs for real in replicas.test.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DEPLOY, ROOT } from './helpers.js';

const dockerfileText = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(dockerfileText);
const instructions = dockerfile.getInstructions();
/** Instructions of the final stage (after the last FROM). */
const finalStage = instructions.slice(instructions.lastIndexOf(dockerfile.getFROMs().at(-1)!));
const jsonOf = (i: Instruction): string[] => JSON.parse(i.getArgumentsContent() ?? '');

/** The value of `--flag VALUE` in an argument list. */
function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

describe('deploy/Dockerfile', () => {
  it('builds FROM a Node 20 Debian image pinned to a full version tag', () => {
    const froms = dockerfile.getFROMs();
    expect(froms.length).toBeGreaterThanOrEqual(1);
    for (const f of froms) {
      // FROM node:${NODE_VERSION}-bookworm-slim, the ARG resolved to its default
      const image = f.getExpandedArguments()[0].getValue();
      expect(image, 'base image').toMatch(/^node:20\.\d+\.\d+-(bookworm|trixie)(-slim)?$/);
    }
  });

  it('installs Mesa lavapipe and the Vulkan loader in the final image, and pnpm at the pinned version', () => {
    const runs = finalStage.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
    expect(runs.join('\n')).toMatch(/apt-get install[^\n]*mesa-vulkan-drivers[^\n]*libvulkan1/);
    // pnpm's version is read from package.json's packageManager, not written twice
    expect(dockerfileText).toMatch(/npm install -g "pnpm@\$\(node -p "require\('\.\/package\.json'\)\.packageManager/);
    expect(dockerfileText).toMatch(/pnpm install --offline --frozen-lockfile/);
  });

  it('runs `offramp serve` on the EXPOSEd port, on all interfaces, with shipped checkpoints, as a non-root user', () => {
    const entry = finalStage.filter((i) => i.getKeyword() === 'ENTRYPOINT').at(-1)!;
    const cmd = finalStage.filter((i) => i.getKeyword() === 'CMD').at(-1)!;
    const argv = [...jsonOf(entry), ...jsonOf(cmd)];
    expect(argv.slice(0, 2)).toEqual(['offramp', 'serve']);
    // `offramp` on PATH is the built CLI
    expect(dockerfileText).toMatch(/pnpm --filter @offramp\/cli deploy --prod --legacy \/out/);
    expect(dockerfileText).toMatch(/ln -s \/app\/dist\/bin\.js \/usr\/local\/bin\/offramp/);
    expect(flag(argv, '--host')).toBe('0.0.0.0');
    const exposed = finalStage.filter((i) => i.getKeyword() === 'EXPOSE').map((i) => i.getArgumentsContent());
    expect(exposed).toEqual([flag(argv, '--port')]);
    const models = argv.filter((_, i) => argv[i - 1] === '--model');
    expect(models.length).toBeGreaterThan(0);
    for (const m of models) {
      const [, folder] = /^[\w.-]+=\/app\/(checkpoints\/[\w.-]+)$/.exec(m) ?? [];
      expect(folder, m).toBeDefined();
      expect(existsSync(join(ROOT, folder, 'config.json')), `${folder}/config.json in the repository`).toBe(true);
    }
    const users = finalStage.filter((i) => i.getKeyword() === 'USER').map((i) => i.getArgumentsContent());
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
  });

  it('has a HEALTHCHECK on /health at the served port', () => {
    const [h] = dockerfile.getHEALTHCHECKs();
    expect(h).toBeDefined();
    const m = /CMD\s+(\[.*\])\s*$/s.exec(h.getArgumentsContent() ?? '');
    expect(m).not.toBeNull();
    const check = JSON.parse(m![1]).join(' ');
    const port = finalStage.find((i) => i.getKeyword() === 'EXPOSE')!.getArgumentsContent();
    expect(check).toContain(`http://127.0.0.1:${port}/health`);
  });

  it('copies only what exists in the repository and is not excluded by .dockerignore', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    // build outputs and dependencies stay out of the context; the shipped checkpoints stay in
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
    expect(ignore.some((p) => p.startsWith('checkpoints'))).toBe(false);
    const copies = dockerfile.getCOPYs();
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      if (c.getFromFlag()) continue; // from a build stage, not from the context
      const args = c.getArguments().map((a) => a.getValue());
      for (const src of args.slice(0, -1)) {
        expect(existsSync(join(ROOT, src)), `COPY source ${src}`).toBe(true);
        expect(ignore, `COPY source ${src} is in .dockerignore`).not.toContain(src);
      }
    }
    // a COPY --from names a stage of this Dockerfile
    const stages = dockerfile.getFROMs().map((f) => f.getBuildStage());
    for (const c of copies.filter((c) => c.getFromFlag())) expect(stages).toContain(c.getFromFlag()!.getValue());
  });
});

describe('deploy/k8s', () => {
  const files = readdirSync(join(DEPLOY, 'k8s')).filter((f) => f.endsWith('.yaml'));
  const objects = files.flatMap((f) =>
    parseAllDocuments(readFileSync(join(DEPLOY, 'k8s', f), 'utf8')).map((d) => {
      expect(d.errors, f).toEqual([]);
      return d.toJS() as { apiVersion: string; kind: string; [k: string]: unknown };
    }),
  );
  const of = <T>(kind: string) => objects.filter((o) => o.kind === kind) as T[];

  it('holds a Deployment, a Service and a ConfigMap, each valid against the Kubernetes API schema', () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`).sort()).toEqual([
      'apps/v1 Deployment',
      'v1 ConfigMap',
      'v1 Service',
    ]);
    const models: Record<string, new (o: any) => { validate(): void }> = {
      'apps/v1 Deployment': Deployment,
      'v1 Service': Service,
      'v1 ConfigMap': ConfigMap,
    };
    for (const o of objects) expect(() => new models[`${o.apiVersion} ${o.kind}`](o).validate()).not.toThrow();
  });

  it('the schema check rejects a wrong type and a missing required field (it really validates)', () => {
    // (like the API server without strict field validation, these schemas let unknown fields through)
    const d = structuredClone(of<Deployment>('Deployment')[0]);
    (d.spec as any).replicas = 'two';
    expect(() => new Deployment(d).validate()).toThrow(/replicas/);
    const e = structuredClone(of<Deployment>('Deployment')[0]);
    delete (e.spec!.template.spec!.containers[0] as any).name;
    expect(() => new Deployment(e).validate()).toThrow(/name/);
    const f = structuredClone(of<Deployment>('Deployment')[0]);
    (f.spec!.template.spec!.containers[0].readinessProbe!.httpGet as any).port = { number: 8080 };
    expect(() => new Deployment(f).validate()).toThrow(/port/);
  });

  it('probes /ready (readiness) and /health (liveness) on the port the server listens on', () => {
    const [d] = of<Deployment>('Deployment');
    const [c] = d.spec!.template.spec!.containers;
    const port = c.ports!.find((p) => p.name === 'http')!;
    expect(flag(c.args!, '--port')).toBe(String(port.containerPort));
    expect(flag(c.args!, '--host')).toBe('0.0.0.0');
    expect(c.readinessProbe?.httpGet?.path).toBe('/ready');
    expect(c.livenessProbe?.httpGet?.path).toBe('/health');
    for (const p of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean))
      expect([port.name, port.containerPort]).toContain(p!.httpGet!.port);
    // the image is deploy/Dockerfile's: its EXPOSEd port and entrypoint (args start with `serve`)
    expect(finalStage.find((i) => i.getKeyword() === 'EXPOSE')!.getArgumentsContent()).toBe(String(port.containerPort));
    expect(c.args![0]).toBe('serve');
    expect(c.resources?.requests?.cpu).toBeDefined();
    expect(c.resources?.requests?.memory).toBeDefined();
    expect(c.resources?.limits?.memory).toBeDefined();
    expect(d.spec!.template.spec!.securityContext?.runAsNonRoot).toBe(true);
  });

  it('the Service selects the pods and targets their port; the ConfigMap gives every variable the args use', () => {
    const [d] = of<Deployment>('Deployment');
    const [s] = of<Service>('Service');
    const [cm] = of<ConfigMap>('ConfigMap');
    const labels = d.spec!.template.metadata!.labels!;
    expect(d.spec!.selector.matchLabels).toEqual(labels);
    for (const [k, v] of Object.entries(s.spec!.selector!)) expect(labels[k]).toBe(v);
    const [c] = d.spec!.template.spec!.containers;
    expect(c.ports!.map((p) => p.name)).toContain(s.spec!.ports![0].targetPort);
    expect(c.envFrom?.map((e) => e.configMapRef?.name)).toContain(cm.metadata!.name);
    const vars = c.args!.flatMap((a) => [...a.matchAll(/\$\((\w+)\)/g)].map((m) => m[1]));
    expect(vars.length).toBeGreaterThan(0);
    for (const v of vars) expect(Object.keys(cm.data!), `$(${v})`).toContain(v);
    // each --model names a checkpoint the image holds (COPY checkpoints /app/checkpoints)
    for (const [i, a] of c.args!.entries()) {
      if (c.args![i - 1] !== '--model') continue;
      const spec = a.replace(/\$\((\w+)\)/g, (_, v) => cm.data![v]);
      const [, folder] = /^[\w.-]+=\/app\/(checkpoints\/[\w.-]+)$/.exec(spec) ?? [];
      expect(folder, spec).toBeDefined();
      expect(existsSync(join(ROOT, folder, 'config.json')), folder).toBe(true);
    }
  });
});
