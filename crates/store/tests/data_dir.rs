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
