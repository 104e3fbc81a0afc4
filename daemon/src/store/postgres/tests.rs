//! The PostgreSQL schema's own guarantees, on the test server (`SEALD_TEST_POSTGRES`; these
//! tests say so and pass without it, outside `scripts/test.sh`).

use super::{redacted, Connector, PgOptions};
use crate::store::{Store, StoreError, StoreLocation};

/// A new database on the test server, if there is one.
fn database() -> Option<String> {
    let Ok(server) = std::env::var("SEALD_TEST_POSTGRES") else {
        eprintln!("skipped: no SEALD_TEST_POSTGRES (scripts/test.sh starts a server)");
        return None;
    };
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).unwrap();
    Some(super::create_database(&server, &format!("t_{}", hex::encode(random))).unwrap())
}

fn open(url: &str) -> Result<Store, StoreError> {
    let dir = std::env::temp_dir();
    Store::open_at(&StoreLocation::postgres(PgOptions::new(url), &dir))
}

#[test]
fn a_schema_newer_than_this_build_is_refused() {
    let Some(url) = database() else { return };
    drop(open(&url).unwrap());
    let connector = Connector::new(&PgOptions::new(&url)).unwrap();
    let mut conn = connector.connect().unwrap();
    conn.batch("UPDATE seald_schema SET version = version + 1")
        .unwrap();
    let err = open(&url).unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
    assert!(err.to_string().contains("upgrade seald"), "{err}");
}

#[test]
fn the_database_refuses_a_forked_chain_and_edited_records() {
    let Some(url) = database() else { return };
    drop(open(&url).unwrap());
    let connector = Connector::new(&PgOptions::new(&url)).unwrap();
    let mut conn = connector.connect().unwrap();
    let insert = |conn: &mut super::PgConn, seq: i64, prev: &[u8], hash: &[u8]| {
        conn.execute(
            "INSERT INTO audit_log VALUES ($1, (extract(epoch FROM now()) * 1000)::bigint, \
             'note', 'a', NULL, '{}', $2, $3)",
            &[&seq, &prev, &hash],
        )
        .map_err(|e| StoreError::from(e).to_string())
    };
    insert(&mut conn, 1, &[0; 32], &[1; 32]).unwrap();
    // A second record 2, a record that skips a number, a record after another head: refused.
    insert(&mut conn, 2, &[1; 32], &[2; 32]).unwrap();
    for (seq, prev) in [(2, [1u8; 32]), (4, [2; 32]), (3, [9; 32])] {
        let err = insert(&mut conn, seq, &prev, &[3; 32]).unwrap_err();
        assert!(
            err.contains("does not extend the chain head") || err.contains("duplicate key"),
            "{seq}: {err}"
        );
    }
    let head = conn
        .query_one("SELECT seq, hash FROM audit_head", &[])
        .unwrap();
    assert_eq!(head.get::<_, i64>(0), 2);
    assert_eq!(head.get::<_, Vec<u8>>(1), vec![2; 32]);
    let err = conn
        .execute("UPDATE audit_log SET actor = 'b' WHERE seq = 1", &[])
        .map_err(|e| StoreError::from(e).to_string())
        .unwrap_err();
    assert!(err.contains("cannot be changed"), "{err}");
    for sql in ["DELETE FROM audit_log WHERE seq = 1", "TRUNCATE audit_log"] {
        let err = conn
            .execute(sql, &[])
            .map_err(|e| StoreError::from(e).to_string())
            .unwrap_err();
        assert!(
            err.contains("younger than 3 years") || err.contains("cannot be changed"),
            "{sql}: {err}"
        );
    }
}

#[test]
fn a_database_without_a_store_is_not_opened_as_an_existing_one() {
    let Some(url) = database() else { return };
    let err = Store::open_existing(&url).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("holds no seald store"), "{err}");
    // Nothing was created in it.
    let connector = Connector::new(&PgOptions::new(&url)).unwrap();
    assert_eq!(
        super::schema::version(&connector.connect().unwrap().client).unwrap(),
        0
    );
}

#[test]
fn an_unreachable_server_is_unavailable_and_says_where() {
    // Nothing listens on port 1 of the loopback address.
    let err = open("postgres://seald@127.0.0.1:1/seald").unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1/seald"), "{text}");
    assert!(text.contains("retry"), "{text}");
}

#[test]
fn passwords_are_never_shown() {
    assert_eq!(
        redacted("postgres://seald:s3cret@db:5432/seald?sslmode=require"),
        "postgres://seald:***@db:5432/seald?sslmode=require"
    );
    assert_eq!(
        redacted("postgres://seald@db/seald"),
        "postgres://seald@db/seald"
    );
    let options = PgOptions::new("postgresql://u:p%40ss@h/d");
    assert!(!format!("{options:?}").contains("p%40ss"));
    assert_eq!(
        redacted("postgres://u:a/b@h/d?password=x&sslmode=require"),
        "postgres://u:***@h/d?password=***&sslmode=require"
    );
}

#[test]
fn sslmode_require_without_a_ca_is_refused_with_what_to_set() {
    let err =
        Connector::new(&PgOptions::new("postgres://seald@db/seald?sslmode=require")).unwrap_err();
    assert!(err.to_string().contains("ca_file"), "{err}");
}

#[test]
#[ignore = "a measurement, not a check: cargo test -p seald --release --lib round_trip -- --ignored --nocapture"]
fn round_trip() {
    let Some(url) = database() else { return };
    let connector = Connector::new(&PgOptions::new(&url)).unwrap();
    let mut conn = connector.connect().unwrap();
    let n = 5000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        conn.query_one("SELECT 1::BIGINT", &[]).unwrap();
    }
    eprintln!("prepared SELECT: {:?} per round trip", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        conn.batch("SELECT 1").unwrap();
    }
    eprintln!("simple query: {:?} per round trip", t.elapsed() / n);
}
