//! The clients beyond Rust, each by its own test runner against this
//! herald binary: `clients/js` on node's (and its built file checked
//! against its TypeScript source), `clients/python` on Python's unittest,
//! with a Python step service herald calls through a real workflow.
//!
//! Without node (or Python, or the TypeScript compiler `.ci/run` installs
//! under `target/ui-tools`) a test says so and passes, unless
//! `HERALD_TEST_TOOLS=require` (as in CI), where it fails.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use herald_testkit::tools;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `program` with `args` from the workspace's root, `HERALD_BIN` naming
/// this herald; its output is the verdict. `None` when `program` is not
/// installed and need not be.
fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Option<()> {
    let spawned = Command::new(program)
        .args(args)
        .current_dir(workspace())
        .env("HERALD_BIN", env!("CARGO_BIN_EXE_herald"))
        .envs(env.iter().copied())
        .output();
    let out = match spawned {
        Ok(out) => out,
        Err(e) => {
            assert!(!tools::required(), "{program} is needed: {e}");
            eprintln!("not run: {program} is not installed ({e})");
            return None;
        }
    };
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{program} {args:?} failed:\n{stdout}\n{stderr}");
    Some(())
}

#[test]
fn the_js_client_passes_its_tests_against_this_herald() {
    run("node", &["--test", "clients/js/test/"], &[]);
}

#[test]
fn the_js_clients_built_file_is_what_its_source_compiles_to() {
    let tsc = tools::in_target("ui-tools/node_modules/.bin/tsc");
    if !tsc.exists() {
        assert!(!tools::required(), "the TypeScript compiler is needed under target/ui-tools (see .ci/run)");
        eprintln!("not run: no TypeScript compiler under target/ui-tools (see .ci/run)");
        return;
    }
    run("node", &["clients/js/check-dist.mjs"], &[("TSC", &tsc)]);
}

#[test]
fn the_python_client_passes_its_tests_against_this_herald() {
    run("python3", &["-m", "unittest", "discover", "-s", "clients/python/tests"], &[]);
}
