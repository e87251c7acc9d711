//! Erasing what redacted data leaves behind on disk (SQLite's WAL, the old
//! row versions PostgreSQL's `VACUUM` removes), once per burst of
//! redactions rather than once each: a thousand deletions finishing
//! together ask a thousand times, and one run after the last of them
//! covers them all. Runs never overlap (on PostgreSQL they would queue on
//! the tables' locks).

use std::sync::{Arc, Mutex, PoisonError};

use herald_store::Store;

#[derive(Default)]
pub struct Residue {
    /// (a run is under way, another was asked for since it began).
    state: Mutex<(bool, bool)>,
}

impl Residue {
    /// Erases soon: now if nothing runs, else once more after the run
    /// under way (which may have begun before the data was redacted).
    pub fn erase(self: &Arc<Self>, store: &Arc<dyn Store>) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.0 {
                state.1 = true;
                return;
            }
            *state = (true, false);
        }
        let (this, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.erase_residue().await {
                    tracing::error!(error = %e, "erased data may linger on disk until the next checkpoint");
                }
                let mut state = this.state.lock().unwrap_or_else(PoisonError::into_inner);
                if !state.1 {
                    state.0 = false;
                    return;
                }
                state.1 = false;
            }
        });
    }
}
