//! `herald check DIR`: workflow files validated without starting anything.

use std::process::Command;

fn check(dir: &std::path::Path, config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald")).arg("check").arg(dir).arg("--config").arg(config).output().unwrap()
}

#[test]
fn check_lists_valid_workflows_and_names_the_file_step_and_field_of_a_bad_one() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("herald.toml");
    std::fs::write(&config, "[services.svc]\ninstances = [\"http://127.0.0.1:9\"]\n").unwrap();
    let dir = root.path().join("workflows");
    std::fs::create_dir(&dir).unwrap();
    let dir = dir.as_path();
    let good = "name = \"ok\"\n[[steps]]\nname = \"a\"\ncall = { service = \"svc\", path = \"/a\" }\n";
    std::fs::write(dir.join("ok.toml"), good).unwrap();

    let out = check(dir, &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("workflow `ok` version 1"));

    let bad = "name = \"bad\"\n[[steps]]\nname = \"pay\"\ncall = { service = \"svc\", path = \"/pay\" }\nretry = { jitter = 3.0 }\n";
    std::fs::write(dir.join("bad.toml"), bad).unwrap();
    let out = check(dir, &config);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("step `pay`") && err.contains("retry.jitter"), "{err}");
}

#[test]
fn check_names_each_text_missing_from_a_language_its_workflow_declares() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("herald.toml");
    std::fs::write(&config, "[services.svc]\ninstances = [\"http://127.0.0.1:9\"]\n").unwrap();
    let dir = root.path().join("workflows");
    std::fs::create_dir(&dir).unwrap();
    let wf = |charge_label: &str| {
        format!(
            "name = \"order\"\nlanguages = [\"en\", \"de\"]\nlabel = {{ en = \"Your order\", de = \"Ihre Bestellung\" }}\n\
             [[steps]]\nname = \"charge\"\nlabel = {charge_label}\n\
             done_label = {{ en = \"Card charged\", de = \"Karte belastet\" }}\ncall = {{ service = \"svc\", path = \"/c\" }}\n"
        )
    };
    std::fs::write(dir.join("order.toml"), wf("{ en = \"Charging your card\", de = \"Karte wird belastet\" }"))
        .unwrap();
    let out = check(&dir, &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("in en, de"));

    std::fs::write(dir.join("order.toml"), wf("{ en = \"Charging your card\" }")).unwrap();
    let out = check(&dir, &config);
    assert!(!out.status.success(), "a missing translation fails the check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("order.toml: `steps.charge.label` has no `de` text"), "{err}");
    assert_eq!(err.matches("has no").count(), 1, "only the missing one is named: {err}");

    // A language the workflow does not declare is refused outright.
    std::fs::write(dir.join("order.toml"), wf("{ en = \"Charging\", fr = \"Paiement\" }")).unwrap();
    let err = String::from_utf8_lossy(&check(&dir, &config).stderr).into_owned();
    assert!(err.contains("`fr` is not one of the workflow's `languages`"), "{err}");
}

#[test]
fn serve_refuses_to_start_with_a_bad_workflow_file() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("workflows");
    std::fs::create_dir(&wf).unwrap();
    std::fs::write(
        wf.join("w.toml"),
        "name = \"w\"\n[[steps]]\nname = \"a\"\ncall = { service = \"ghost\", path = \"/a\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workflows"])
        .arg(&wf)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("w.toml") && err.contains("ghost"), "{err}");
}

/// The demo's own workflows speak English, German and French, every text
/// in each: `herald check` names nothing missing.
#[test]
fn the_demo_workflows_are_translated_into_every_language_they_declare() {
    let root = tempfile::tempdir().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows");
    // `check` wants every service a workflow calls to be configured: these are the demo's.
    let mut services = std::collections::BTreeSet::new();
    for (_, text) in herald_demo::workflows() {
        for line in text.lines() {
            if let Some(rest) = line.split("service = \"").nth(1) {
                services.insert(rest.split('"').next().unwrap().to_string());
            }
        }
    }
    assert!(services.len() >= 8, "{services:?}");
    let config = root.path().join("herald.toml");
    let listed: String =
        services.iter().map(|s| format!("[services.{s}]\ninstances = [\"http://127.0.0.1:9\"]\n")).collect();
    std::fs::write(&config, listed).unwrap();

    let out = check(&dir, &config);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("has no"), "{stderr}");
    for name in ["place-order", "delete-account"] {
        assert!(
            stdout.lines().any(|l| l.contains(&format!("workflow `{name}`")) && l.ends_with("in en, de, fr")),
            "{stdout}"
        );
    }
}
