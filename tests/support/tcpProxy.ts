import net from "node:net";

/**
 * A TCP proxy the test controls, between the app and Redis or Postgres: add latency to every
 * reply, reset every connection, or go down (refuse and drop) and come back.
 */
export type TcpProxy = {
  port: number;
  url(scheme: string, path?: string): string;
  /** Delay every chunk sent back to the client by `ms` (0 to stop). */
  setLatency(ms: number): void;
  /** Destroys every open connection (the client sees a reset). */
  resetConnections(): void;
  /** Down: open connections are dropped and the port stops listening (connections are refused), as when the server is gone. */
  setDown(down: boolean): Promise<void>;
  close(): Promise<void>;
};

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let latencyMs = 0;
  let down = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    sockets.add(client);
    sockets.add(upstream);
    const forget = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", forget);
    upstream.on("error", forget);
    client.on("close", forget);
    upstream.on("close", forget);
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (latencyMs > 0) setTimeout(() => client.destroyed || client.write(chunk), latencyMs);
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("proxy has no port");
  const resetAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port: address.port,
    url: (scheme, path = "") => `${scheme}://127.0.0.1:${address.port}${path}`,
    setLatency: (ms) => {
      latencyMs = ms;
    },
    resetConnections: resetAll,
    setDown: async (value) => {
      if (value === down) return;
      down = value;
      if (down) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        resetAll();
        await closed;
      } else {
        await new Promise<void>((resolve) => server.listen(address.port, "127.0.0.1", resolve));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        resetAll();
        if (down) resolve();
        else server.close(() => resolve());
      }),
  };
}
