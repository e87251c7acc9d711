//! PostgreSQL for the node tests: cutting this test's nodes off the shared
//! server, and a private server (a cluster of the test's own in a
//! temporary directory) that a test may stop and start again without
//! touching the server other tests use.

use std::{
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use herald_store::contract::postgres::TestSchema;
use herald_testkit::{eventually, free_port};
use sqlx::{ConnectOptions, Connection};

/// Ends every connection that the herald processes `pids` hold to the
/// shared server, and no other: herald names its connections
/// `herald-node-<pid>-<random>`. How many it ended.
pub async fn terminate_connections(schema: &TestSchema, pids: &[u32]) -> u64 {
    let mut c = schema.options().connect().await.unwrap();
    let patterns: Vec<String> = pids.iter().map(|pid| format!("herald-node-{pid}-%")).collect();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name LIKE ANY($1) AND pid <> pg_backend_pid()",
    )
    .bind(&patterns)
    .fetch_all(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    ended.into_iter().filter(|e| *e).count() as u64
}

/// A PostgreSQL server of this test's own, on a free loopback port, its
/// data in a temporary directory; stopped and removed when dropped.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    /// Run as this user: initdb and postgres refuse to run as root.
    user: Option<&'static str>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivatePostgres {
    /// A new cluster (`initdb`, trust auth), started.
    pub async fn start() -> Self {
        let bin = pg_bindir();
        let root = run(Command::new("id").arg("-u")).stdout == b"0\n";
        let dir = tempfile::tempdir().unwrap();
        let user = root.then_some("postgres");
        if let Some(user) = user {
            let owned = Command::new("chown").arg(user).arg(dir.path()).status().unwrap();
            assert!(owned.success(), "chown {user} {}", dir.path().display());
        }
        let mut pg = PrivatePostgres { port: free_port(), bin, user, dir, child: None };
        let data = pg.data();
        let init = run(pg.command("initdb").arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "--no-sync"]));
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        pg.resume().await;
        pg
    }

    /// `postgres://` at this server, its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut c = match self.user {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([format!("--reuid={user}"), format!("--regid={user}"), "--init-groups".into(), "--".into()]);
                c.arg(program);
                c
            }
            None => Command::new(program),
        };
        // A working directory the server's user may enter.
        c.current_dir(self.dir.path());
        c
    }

    /// Starts the server (again) on its port, and waits until it takes
    /// connections.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "the private PostgreSQL already runs");
        let log = std::fs::File::options().create(true).append(true).open(self.dir.path().join("pg.log")).unwrap();
        let data = self.data();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let (bin, port) = (self.bin.join("pg_isready"), self.port.to_string());
        let accepting = || {
            let ok = Command::new(&bin).args(["-q", "-h", "127.0.0.1", "-p", &port]).status().unwrap().success();
            std::future::ready(ok.then_some(()))
        };
        eventually("the private PostgreSQL takes connections", Duration::from_secs(30), accepting).await;
    }

    /// Stops the server: SIGINT, PostgreSQL's fast shutdown (connections
    /// are ended, nothing committed is lost).
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("the private PostgreSQL runs");
        let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "postgres stopped cleanly: {status:?}");
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: the postmaster ends its backends too.
            let _ = Command::new("kill").args(["-QUIT", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"))
}

/// PostgreSQL's programs: `pg_config --bindir`, else Debian's place for 15.
fn pg_bindir() -> PathBuf {
    let found = Command::new("pg_config").arg("--bindir").output().ok().filter(|o| o.status.success());
    let dir = found.map_or_else(
        || PathBuf::from("/usr/lib/postgresql/15/bin"),
        |o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
    );
    assert!(
        dir.join("initdb").exists(),
        "PostgreSQL's server programs (initdb, postgres) are not in {}: install PostgreSQL (15 or later) or put \
         pg_config on PATH",
        dir.display()
    );
    dir
}
