//! The external tools some tests use, which `.ci/run` installs under
//! `target/`: where they are, and whether a test may skip without one.

use std::path::PathBuf;

/// `HERALD_TEST_TOOLS=require` (as in CI): a missing tool fails the test
/// rather than skipping it.
pub fn required() -> bool {
    std::env::var("HERALD_TEST_TOOLS").is_ok_and(|v| v == "require")
}

/// `target/<dir>` of the workspace, where `.ci/run` puts a tool.
pub fn in_target(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target").join(dir)
}
