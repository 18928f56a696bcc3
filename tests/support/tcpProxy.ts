import net from "node:net";

/**
 * A TCP proxy the test controls, between the app and Redis or Postgres: add latency to every
 * reply, reset every connection, stall (keep accepting, answer nothing), or go down (refuse and
 * drop) and come back.
 */
export type TcpProxy = {
  port: number;
  url(scheme: string, path?: string): string;
  /** Delay every chunk sent back to the client by `ms` (0 to stop). */
  setLatency(ms: number): void;
  /**
   * Stalled ("both"): connections are still accepted, but nothing passes either way (held, as a load
   * balancer with a dead backend would hold it). "replies": what the client sends still reaches the
   * server, but its answers are held (a statement runs, and its answer is lost). `false` resumes,
   * and what was held is delivered to connections still open.
   */
  setStalled(stalled: false | "both" | "replies"): void;
  /** Passes on the first chunk the client sends that contains `marker`, and from then on holds every reply (as setStalled("replies")). */
  stallRepliesAfter(marker: string): void;
  /** Destroys every open connection (the client sees a reset). */
  resetConnections(): void;
  /** Down: open connections are dropped and the port stops listening (connections are refused), as when the server is gone. */
  setDown(down: boolean): Promise<void>;
  close(): Promise<void>;
};

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let latencyMs = 0;
  let down = false;
  let stalled: false | "both" | "replies" = false;
  const held: Array<() => void> = [];
  let replyMarker: string | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    const toServer = (deliver: () => void) => (stalled === "both" ? held.push(deliver) : deliver());
    const toClient = (deliver: () => void) => (stalled ? held.push(deliver) : deliver());
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
    client.on("data", (chunk: Buffer) => {
      if (replyMarker !== undefined && chunk.includes(replyMarker)) {
        replyMarker = undefined;
        stalled = "replies";
      }
      toServer(() => upstream.destroyed || upstream.write(chunk));
    });
    upstream.on("data", (chunk) =>
      toClient(() => {
        if (latencyMs > 0) setTimeout(() => client.destroyed || client.write(chunk), latencyMs);
        else if (!client.destroyed) client.write(chunk);
      }),
    );
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
    setStalled: (value) => {
      stalled = value;
      if (!value) for (const deliver of held.splice(0)) deliver();
    },
    stallRepliesAfter: (marker) => {
      replyMarker = marker;
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
