//! The data directory and the files herald keeps in it are private to
//! herald's user, whatever the umask and however they were left before.

#![cfg(unix)]

use std::{fs, os::unix::fs::PermissionsExt, path::Path};

use herald_store::{Node, Store, sqlite::SqliteStore};

fn node() -> Node {
    Node { id: "test".into(), lease: chrono::Duration::seconds(60) }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every entry of `dir`, with its mode.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut all: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), mode(&e.path())))
        .collect();
    all.sort();
    all
}

/// Opens a store in `dir` and writes to it (the secret, as herald does at
/// start), so the write-ahead log and its index exist.
async fn open_and_write(dir: &Path) -> SqliteStore {
    let store = SqliteStore::open(dir, node()).unwrap();
    store.secret(vec![7; 32]).await.unwrap();
    store
}

#[tokio::test]
async fn a_new_data_directory_is_0700_and_every_file_in_it_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("data");

    let _store = open_and_write(&dir).await;

    assert_eq!(mode(&dir), 0o700);
    let files = modes(&dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["herald.db", "herald.db-shm", "herald.db-wal", "herald.lock"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for (name, m) in &files {
        assert_eq!(*m, 0o600, "{name} is {m:o}");
    }
}

#[tokio::test]
async fn an_existing_data_directory_open_to_others_is_tightened_with_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop(open_and_write(&dir).await);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    for entry in fs::read_dir(&dir).unwrap() {
        fs::set_permissions(entry.unwrap().path(), fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::write(dir.join("notes.txt"), "made by hand").unwrap();
    fs::set_permissions(dir.join("notes.txt"), fs::Permissions::from_mode(0o666)).unwrap();

    let _store = open_and_write(&dir).await;

    assert_eq!(mode(&dir), 0o700);
    for (name, m) in modes(&dir) {
        assert_eq!(m, 0o600, "{name} is {m:o}");
    }
}

/// The bytes of every file in `dir`, to show nothing was changed.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "herald.lock")
        .map(|e| (e.file_name().into_string().unwrap(), fs::read(e.path()).unwrap()))
        .collect();
    all.sort();
    all
}

/// Opening refuses, saying `why` and naming the file, and leaves every
/// byte as it was.
fn refused(dir: &Path, why: &str) {
    let before = contents(dir);
    let err = SqliteStore::open(dir, node()).err().expect("refused");
    let said = err.to_string();
    assert!(said.contains(why) && said.contains("herald.db") && said.contains("leaves it as it is"), "{said}");
    assert_eq!(contents(dir), before, "not a byte changed");
}

#[tokio::test]
async fn a_database_of_another_application_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("herald.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'ann');",
    )
    .unwrap();
    drop(conn);
    refused(tmp.path(), "a database herald did not make");

    let marked = rusqlite::Connection::open(tmp.path().join("herald.db")).unwrap();
    marked.pragma_update(None, "application_id", 0x1234).unwrap();
    drop(marked);
    refused(tmp.path(), "belongs to another application (its application_id is 0x1234)");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let noise: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fs::write(tmp.path().join("herald.db"), noise).unwrap();
    refused(tmp.path(), "is not a SQLite database, or is damaged");
}

#[tokio::test]
async fn a_database_a_newer_herald_wrote_is_refused_and_one_from_before_the_mark_is_taken() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open_and_write(tmp.path()).await);
    let conn = rusqlite::Connection::open(tmp.path().join("herald.db")).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    // herald's own file from before it marked them: opened, and marked.
    conn.pragma_update(None, "application_id", 0).unwrap();
    drop(conn);
    let store = SqliteStore::open(tmp.path(), node()).unwrap();
    assert_eq!(store.secret(vec![9; 32]).await.unwrap(), vec![7; 32], "the same data");
    drop(store);
    let conn = rusqlite::Connection::open(tmp.path().join("herald.db")).unwrap();
    assert_eq!(conn.pragma_query_value(None, "application_id", |r| r.get::<_, i64>(0)).unwrap(), 0x6872_6c64);
    conn.pragma_update(None, "user_version", version + 1).unwrap();
    drop(conn);
    refused(tmp.path(), "was written by a newer herald");
}
