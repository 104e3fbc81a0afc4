//! The test PostgreSQL server: `scripts/test.sh` starts a throwaway cluster
//! (`scripts/postgres.sh`) and names it in `SEALD_TEST_POSTGRES`.

/// A new, empty database on the test server, as a URL; `None` (saying why) when the tests run
/// by hand without a server. Under CI (`CI` set) a missing server fails the test instead.
pub fn fresh_database() -> Option<String> {
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
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("random");
    let name = format!("t_{}", hex::encode(random));
    Some(seald::store::create_postgres_database(&server, &name).expect("create a test database"))
}
