import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, natsServerBinary } from './nats-server.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Polls until check() gives a value; a rejection counts as none yet. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** What a node's monitoring `/jsz` says about the JetStream meta group (the cluster's JetStream control plane). */
interface MetaCluster {
  leader?: string;
  cluster_size?: number;
}

/** Distinct free ports: freePort() may hand out one twice once the first is closed again. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** One node of a JetStreamCluster: its own client, route and monitoring port and its own store. */
export class ClusterNode {
  private process?: ChildProcess;

  constructor(
    /** The server name (`-n`), as JetStream reports it in `cluster.leader` and `cluster.replicas[].name`. */
    readonly name: string,
    readonly port: number,
    readonly clusterPort: number,
    readonly monitorPort: number,
    readonly storeDir: string,
    private readonly routes: readonly string[],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  /** Starts the node (again) on the same ports and store; resolves once its client port accepts connections. */
  async restart(): Promise<void> {
    if (this.process) throw new Error(`${this.name} is already running`);
    const args = ['-a', '127.0.0.1', '-p', String(this.port), '-n', this.name, '-m', String(this.monitorPort), '-js', '-sd', this.storeDir];
    args.push('--cluster_name', 'c', '--cluster', `nats://127.0.0.1:${this.clusterPort}`, '--routes', this.routes.join(','));
    const child = spawn(natsServerBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4096)));
    this.process = child;
    child.once('exit', () => {
      if (this.process === child) this.process = undefined;
    });
    try {
      // Up once its monitoring names it (not some other process on the port) and its client port is open.
      const up = async () => (await this.serverName()) === this.name && (await portOpen(this.port));
      const state = await waitFor(`${this.name} to listen on ${this.port}`, async () => (child.exitCode !== null ? 'exited' : (await up()) ? 'up' : undefined), 10_000);
      if (state === 'exited') throw new Error(`${this.name} exited: ${stderr}`);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** SIGKILL: no goodbye to clients or to the other nodes; they notice when the routes break. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** Graceful stop (SIGTERM): the node hands over the leaderships it holds before it exits. */
  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  private async serverName(): Promise<string | undefined> {
    const varz = (await (await fetch(`http://127.0.0.1:${this.monitorPort}/varz`)).json()) as { server_name?: string };
    return varz.server_name;
  }

  /** This node's view of the JetStream meta group, from monitoring. */
  async meta(): Promise<MetaCluster> {
    const jsz = (await (await fetch(`http://127.0.0.1:${this.monitorPort}/jsz`)).json()) as { meta_cluster?: MetaCluster };
    return jsz.meta_cluster ?? {};
  }

  /** Monitoring `/healthz`: ok once JetStream is enabled and every stream and consumer it holds is current. */
  async healthy(): Promise<boolean> {
    return fetch(`http://127.0.0.1:${this.monitorPort}/healthz`).then((r) => r.ok, () => false);
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    await waitFor(`port ${this.port} to close`, async () => !(await portOpen(this.port)) || undefined, 10_000);
  }
}

/**
 * Three nats-servers of a test's own, routed into one cluster with JetStream: free ports, a temp store
 * each, and the means to kill -9, stop and restart any node and to wait for stream leaders and replicas.
 * Waits use an admin connection of the cluster's own (to every node, reconnecting), not the test's.
 *
 *   const cluster = await JetStreamCluster.start();           // NATS_URL: cluster.urls.join(',')
 *   const leader = (await cluster.streamLeader('EVENTS'))!;
 *   await leader.kill();                                       // a new leader takes 4-9 s (raft election timeout)
 *   await cluster.waitForStreamLeader('EVENTS', { not: leader });
 *   await leader.restart();
 *   await cluster.waitForCurrentReplicas('EVENTS', 3);
 */
export class JetStreamCluster {
  private admin?: Promise<{ nc: NatsConnection; jsm: JetStreamManager }>;

  private constructor(readonly nodes: readonly ClusterNode[]) {}

  static async start(size = 3): Promise<JetStreamCluster> {
    const ports = await freePorts(size * 3);
    const clusterPorts = ports.slice(size, size * 2);
    const nodes = Array.from({ length: size }, (_, i) => {
      const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`);
      return new ClusterNode(`n${i + 1}`, ports[i]!, clusterPorts[i]!, ports[size * 2 + i]!, mkdtempSync(join(tmpdir(), `nats-cluster-n${i + 1}-`)), routes);
    });
    const cluster = new JetStreamCluster(nodes);
    try {
      await Promise.all(nodes.map((n) => n.restart()));
      await cluster.waitForMetaLeader();
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  /** Every node's client URL: what NATS_URL lists. */
  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** The i-th node, from 0 (named `n${i + 1}`). */
  node(i: number): ClusterNode {
    const node = this.nodes[i];
    if (!node) throw new Error(`no node ${i}: the cluster has ${this.nodes.length}`);
    return node;
  }

  /** The node of a server name as JetStream reports it (`n1`...). */
  named(name: string): ClusterNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node named ${name}`);
    return node;
  }

  /** Resolves once every running node knows the same JetStream meta leader and the full cluster size. */
  async waitForMetaLeader(timeoutMs = 30_000): Promise<ClusterNode> {
    const leader = await waitFor('a JetStream meta leader', async () => {
      const metas = await Promise.all(this.nodes.filter((n) => n.running).map((n) => n.meta()));
      const leaders = new Set(metas.map((m) => m.leader));
      const sized = metas.every((m) => m.cluster_size === this.nodes.length);
      return leaders.size === 1 && metas[0]?.leader && sized ? metas[0].leader : undefined;
    }, timeoutMs);
    return this.named(leader);
  }

  /** The stream as the cluster describes it, through the admin connection (throws while nothing answers). */
  async streamInfo(stream: string): Promise<StreamInfo> {
    const { jsm } = await this.adminConnection();
    return jsm.streams.info(stream);
  }

  /** The node leading the stream now, or undefined while it has none (or none answers: an election). */
  async streamLeader(stream: string): Promise<ClusterNode | undefined> {
    const leader = await this.streamInfo(stream).then((si) => si.cluster?.leader, () => undefined);
    return leader ? this.named(leader) : undefined;
  }

  /** The node leading a consumer now, or undefined while it has none. */
  async consumerLeader(stream: string, consumer: string): Promise<ClusterNode | undefined> {
    const { jsm } = await this.adminConnection();
    const leader = await jsm.consumers.info(stream, consumer).then((ci) => ci.cluster?.leader, () => undefined);
    return leader ? this.named(leader) : undefined;
  }

  /** Resolves with the stream's leader once it has one, other than `not` if given (a leader that was just killed). */
  waitForStreamLeader(stream: string, { not, timeoutMs = 30_000 }: { not?: ClusterNode; timeoutMs?: number } = {}): Promise<ClusterNode> {
    return waitFor(`a leader of stream ${stream}${not ? ` other than ${not.name}` : ''}`, async () => {
      const leader = await this.streamLeader(stream);
      return leader && leader !== not && leader.running ? leader : undefined;
    }, timeoutMs);
  }

  /**
   * Resolves once the stream has a leader and n peers in all (the leader counted) are current: n = 3 after a
   * restarted node has caught up. Consumers have groups of their own: pass them to wait for those as well.
   */
  async waitForCurrentReplicas(stream: string, n: number, { consumers = [], timeoutMs = 30_000 }: { consumers?: string[]; timeoutMs?: number } = {}): Promise<void> {
    const { jsm } = await this.adminConnection();
    const current = (cluster?: { leader?: string; replicas?: { current: boolean; offline?: boolean }[] }) =>
      !!cluster?.leader && 1 + (cluster.replicas ?? []).filter((r) => r.current && !r.offline).length >= n;
    await waitFor(`${n} current peers of stream ${stream}${consumers.length ? ` and its consumers ${consumers.join(', ')}` : ''}`, async () => {
      if (!current((await jsm.streams.info(stream)).cluster)) return undefined;
      for (const consumer of consumers) if (!current((await jsm.consumers.info(stream, consumer)).cluster)) return undefined;
      return true;
    }, timeoutMs);
  }

  /** Closes the admin connection, kills every node and removes the stores. */
  async dispose(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.then(({ nc }) => nc.close(), () => undefined);
    await Promise.all(this.nodes.map((n) => n.kill()));
    for (const node of this.nodes) rmSync(node.storeDir, { recursive: true, force: true });
  }

  /** Short request timeouts, so that a wait polls again soon rather than hanging on a dead leader. */
  private adminConnection(): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
    this.admin ??= (async () => {
      const nc = await connect({ servers: this.urls, name: 'jetstream-cluster-admin', reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 2_000 });
      return { nc, jsm: await jetstreamManager(nc, { timeout: 1_000, checkAPI: false }) };
    })();
    return this.admin;
  }
}
