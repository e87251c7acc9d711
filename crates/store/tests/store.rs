//! The embedded store against the store contract, each test on a fresh
//! data directory.

use std::{sync::Arc, time::Duration};

use herald_core::OperationId;
use herald_store::{
    Store,
    contract::{self, Harness},
    sqlite::SqliteStore,
};

struct Embedded {
    store: Arc<SqliteStore>,
    dir: tempfile::TempDir,
}

impl Harness for Embedded {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Garbage where the operation's state is kept, written past the store
    /// on a connection of its own, as a broken disk might leave it.
    async fn corrupt_operation(&self, id: &OperationId) {
        let db = rusqlite::Connection::open(self.dir.path().join("herald.db")).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        let changed = db.execute("UPDATE operations SET state = '{\"id\": ' WHERE id = ?1", [id.to_string()]).unwrap();
        assert_eq!(changed, 1, "no stored operation {id}");
    }
}

async fn embedded() -> Embedded {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), contract::node()).unwrap());
    Embedded { store, dir }
}

mod contract_suite {
    use super::*;
    herald_store::contract_tests!(embedded());
}

#[tokio::test]
async fn a_lease_that_ran_out_is_claimed_again_by_its_own_node_under_a_new_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = herald_store::Node { id: "contract".into(), lease: chrono::Duration::milliseconds(300) };
    let store = SqliteStore::open(dir.path(), node).unwrap();
    contract::a_lease_that_ran_out_is_claimed_again_by_its_own_node_under_a_new_token(&store).await;
}
