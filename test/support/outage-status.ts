import type { EventTransport } from '../../lib/index.js';
import { eventually } from './instances.js';
import { TcpProxy } from './tcp-proxy.js';

/**
 * Connects a transport to its server through a proxy, cuts the connection there and lets it back:
 * status() must say since when the connection is down and what failed when, then since when it is
 * up again. `create` makes the transport for the proxy's port.
 */
export async function expectOutageInStatus(serverPort: number, create: (proxyPort: number) => EventTransport): Promise<void> {
  const proxy = await TcpProxy.start(serverPort);
  const transport = create(proxy.port);
  try {
    await transport.connect();
    expect(transport.status()).toMatchObject({ connected: true, disconnects: 0, reconnects: 0 });
    const cut = new Date().toISOString();
    await proxy.down();
    await eventually(() => expect(transport.status()).toMatchObject({ connected: false, disconnects: 1 }));
    const down = transport.status();
    expect(down.disconnectedSince! >= cut && down.since === down.disconnectedSince).toBe(true);
    expect(down.lastError).toBeTruthy();
    expect(down.lastErrorAt! >= cut).toBe(true);
    await proxy.up();
    await eventually(() => expect(transport.status()).toMatchObject({ connected: true, reconnects: 1 }), 20_000);
    const back = transport.status();
    expect(back.disconnectedSince).toBeUndefined();
    expect(back.since! >= down.since!).toBe(true);
  } finally {
    await transport.close();
    await proxy.dispose();
  }
}
