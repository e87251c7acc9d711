//! A prefix of a test's own on a broker's server: its name, and removing
//! what the test made under it when the test ends, passed or failed.

use std::future::Future;

/// `tag` and eight random hex digits.
pub fn name(tag: &str) -> String {
    format!("{tag}{:08x}", rand::random::<u32>())
}

/// Runs `remove` to its end on a thread and a runtime of their own, and
/// says on stderr when it failed: for a `Drop`, which cannot wait on the
/// test's runtime, and runs when a test panics too. `remove` makes its
/// future on that runtime, so connections it opens belong to it.
pub fn remove_on_own_thread<F, Fut, T, E>(prefix: &str, remove: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>>,
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let cleanup = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(remove())
    });
    if let Ok(Err(e)) = cleanup.join() {
        eprintln!("could not remove what the test made under {prefix}: {e}");
    }
}
