//! The test PostgreSQL server: `scripts/test.sh` starts a throwaway cluster
//! (`scripts/postgres.sh`) and names it in `SEALD_TEST_POSTGRES`.

/// A new, empty database on the test server, as a URL; `None` (saying why) when the tests run
/// by hand without a server. Under CI (`CI` set) a missing server fails the test instead.
pub fn fresh_database() -> Option<String> {
    let server = server()?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("random");
    let name = format!("t_{}", hex::encode(random));
    Some(seald::store::create_postgres_database(&server, &name).expect("create a test database"))
}

/// The test server's URL; `None` (saying why) when the tests run by hand without one.
fn server() -> Option<String> {
    let Ok(server) = std::env::var("SEALD_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "SEALD_TEST_POSTGRES is not set: run the tests with scripts/test.sh"
        );
        eprintln!(
            "skipped: no PostgreSQL server (run scripts/test.sh, or scripts/postgres.sh start \
             and SEALD_TEST_POSTGRES=$(scripts/postgres.sh url))"
        );
        return None;
    };
    Some(server)
}

/// A PostgreSQL cluster of a test's own (`scripts/postgres.sh` with its own state), for tests
/// that stop and start the server: the shared one serves every other test. Removed on drop.
#[derive(Debug)]
pub struct PrivateServer {
    state: tempfile::TempDir,
    /// `postgres://seald@127.0.0.1:PORT/postgres`.
    pub url: String,
}

impl PrivateServer {
    /// Starts a new cluster; `None` when the tests run without PostgreSQL (see
    /// [`fresh_database`]).
    pub fn start() -> Option<Self> {
        server()?;
        let state = tempfile::tempdir().expect("state dir");
        run(state.path(), "start");
        let url = run(state.path(), "url").trim().to_owned();
        Some(Self { state, url })
    }

    /// Stops the server (fast shutdown: connections are closed), keeping its data.
    pub fn down(&self) {
        run(self.state.path(), "down");
    }

    /// Starts the server again on the same port.
    pub fn up(&self) {
        run(self.state.path(), "up");
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        run(self.state.path(), "stop");
    }
}

fn run(state: &std::path::Path, what: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh");
    let out = std::process::Command::new(script)
        .arg(what)
        .env("SEALD_PG_STATE", state)
        .output()
        .expect("run scripts/postgres.sh");
    assert!(
        out.status.success(),
        "scripts/postgres.sh {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
