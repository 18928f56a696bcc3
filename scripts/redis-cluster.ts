// `npm run cluster`: a private Redis Cluster (3 masters + 3 replicas, real redis-server processes
// on free ports, nothing kept on disk) for trying the cluster driver locally, and for the bench.
// Prints `REDIS_CLUSTER_NODES=host:port,...` on one line once every node agrees the cluster is
// healthy, then keeps it up until Ctrl-C, SIGTERM or the end of its standard input (so a parent
// process that dies takes the cluster with it), and removes every node and its directory.
import { redisServerAvailable, startRedisCluster } from "../tests/support/redisCluster";

const USAGE = `usage: npm run cluster [-- --full-coverage]
  Starts 3 masters + 3 replicas on free ports and prints REDIS_CLUSTER_NODES=... for the app.
  --full-coverage  cluster-require-full-coverage yes (the Redis default; the README recommends no)`;

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(USAGE);
    return;
  }
  if (!redisServerAvailable()) {
    console.error("redis-server and redis-cli are not installed: install them (Debian: apt-get install redis-server redis-tools)");
    process.exitCode = 1;
    return;
  }
  const cluster = await startRedisCluster({ fullCoverage: process.argv.includes("--full-coverage") });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await cluster.stop();
    process.exit(0);
  };
  const stopNow = () => void stop();
  process.on("SIGINT", stopNow);
  process.on("SIGTERM", stopNow);
  process.stdin.on("end", stopNow);
  process.stdin.on("error", stopNow);
  process.stdin.resume();
  console.log(`REDIS_CLUSTER_NODES=${cluster.seeds}`);
}

main().catch((err: unknown) => {
  console.error(`the cluster could not be started: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
