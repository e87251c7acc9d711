//! The `herald` binary as a test's child process.

use std::{
    path::Path,
    process::{Command, Stdio},
};

/// `bin serve --config <config>` (`bin`: the test's
/// `env!("CARGO_BIN_EXE_herald")`), its warnings on the test's stderr; the
/// caller may set more (environment, where the log goes) before spawning.
pub fn serve(bin: &str, config: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--config"]).arg(config).env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::inherit());
    cmd
}
