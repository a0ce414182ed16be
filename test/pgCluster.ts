/**
 * A throw-away PostgreSQL cluster for tests: initdb + pg_ctl in a temporary directory, run as the `postgres` user
 * (Postgres refuses to run as root) through runuser, listening on a free port of 127.0.0.1 only, with password
 * authentication (so tests can check that the password never shows). `pgUnavailable()` says why one cannot start.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

const RUNUSER = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].find((p) => existsSync(p));

/** The directory holding initdb and pg_ctl (Debian: /usr/lib/postgresql/<major>/bin), or undefined. */
function pgBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((d) => existsSync(join(root, d, "bin", "pg_ctl")))
      .sort((a, b) => Number(b) - Number(a));
    if (majors.length) return join(root, majors[0], "bin");
  }
  return undefined;
}

function postgresUid(): { uid: number; gid: number } | undefined {
  const r = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const g = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (r.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Why no cluster can be started here (a skip message), or undefined when one can. */
export function pgUnavailable(): string | undefined {
  if (!pgBin())
    return "PostgreSQL binaries are not installed (apt-get install postgresql); skipping the Postgres tests";
  if (!postgresUid()) return "there is no `postgres` user to run the server as; skipping the Postgres tests";
  if (process.getuid?.() === 0 && !RUNUSER) return "runuser is missing; skipping the Postgres tests";
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const PG_USER = "gcxtest";
export const PG_PASSWORD = "s3cr3t-Pa55word";

export class PgCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** initdb, then start. Needs `pgUnavailable()` to be undefined. */
  static async start(): Promise<PgCluster> {
    const bin = pgBin()!;
    const ids = postgresUid()!;
    const dir = mkdtempSync(join(tmpdir(), "gcx-pg-"));
    chmodSync(dir, 0o700);
    chownSync(dir, ids.uid, ids.gid);
    const pw = join(dir, "pw");
    writeFileSync(pw, PG_PASSWORD + "\n");
    chownSync(pw, ids.uid, ids.gid);
    const c = new PgCluster(dir, await freePort());
    c.run(join(bin, "initdb"), [
      "-D",
      join(dir, "data"),
      "-U",
      PG_USER,
      "--pwfile",
      pw,
      "--auth",
      "scram-sha-256",
      "-E",
      "UTF8",
      "--no-sync",
    ]);
    await c.startServer();
    return c;
  }

  private run(cmd: string, args: string[]): string {
    const argv =
      process.getuid?.() === 0 ? ([RUNUSER!, ["-u", "postgres", "--", cmd, ...args]] as const) : ([cmd, args] as const);
    const r = spawnSync(argv[0], [...argv[1]], { encoding: "utf8", cwd: this.dir });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  /** Starts the server and waits until it accepts connections. */
  async startServer(): Promise<void> {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c max_connections=200`;
    this.run(join(pgBin()!, "pg_ctl"), [
      "-D",
      join(this.dir, "data"),
      "-l",
      join(this.dir, "log"),
      "-o",
      opts,
      "-w",
      "-t",
      "60",
      "start",
    ]);
    return Promise.resolve();
  }

  /** Stops the server ("fast": clients are disconnected at once). */
  stopServer(): void {
    this.run(join(pgBin()!, "pg_ctl"), ["-D", join(this.dir, "data"), "-m", "fast", "-w", "stop"]);
  }

  /** postgres://user:password@127.0.0.1:port/db */
  url(db: string): string {
    return `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${this.port}/${db}`;
  }

  /** Creates a fresh database and returns its URL. */
  async createDb(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url("postgres") });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  /** Stops the server (immediately) and removes the cluster's directory. */
  destroy(): void {
    try {
      this.run(join(pgBin()!, "pg_ctl"), ["-D", join(this.dir, "data"), "-m", "immediate", "-w", "stop"]);
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
