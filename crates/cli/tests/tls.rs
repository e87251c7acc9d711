//! The `herald` binary's TLS listener and its certificate: replaced on
//! disk and reloaded on SIGHUP without a restart, a broken replacement
//! leaving the one in use, and a start on a pair that does not hold
//! together refused with the file named.

use std::{
    path::{Path, PathBuf},
    process::Child,
    time::Duration,
};

use herald_testkit::{
    eventually, free_port,
    process::{Serve, signal, stop},
    tls::{self, Pair},
};

struct Files {
    config: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    log: PathBuf,
}

fn files(dir: &Path, port: u16) -> Files {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let config = dir.join("herald.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("data").display(),
        cert.display(),
        key.display()
    );
    std::fs::write(&config, text).unwrap();
    Files { config, cert, key, log: dir.join("herald.log") }
}

fn start(f: &Files) -> Child {
    herald_testkit::process::serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(&f.config))
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&f.log).unwrap())
        .spawn()
        .expect("the herald binary starts")
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_is_served_after_sighup_and_a_broken_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let f = files(dir.path(), port);
    let (first, second) = (Pair::new(), Pair::new());
    first.write(&f.cert, &f.key);
    let herald = start(&f);
    let base = format!("https://127.0.0.1:{port}");
    assert!(herald_testkit::ready(&tls::client(&first), &base, Duration::from_secs(30)).await, "herald is not up");
    assert_eq!(tls::presented(addr, &[&first, &second]).await.unwrap(), first.der);

    // A connection opened before the reload lives on through it.
    let kept = tls::client(&first);
    assert_eq!(kept.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);

    second.write(&f.cert, &f.key);
    signal(herald.id(), "HUP");
    eventually("the new certificate is presented", Duration::from_secs(10), || async {
        (tls::presented(addr, &[&first, &second]).await.ok()? == second.der).then_some(())
    })
    .await;
    let resp = tls::client(&second).get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "a client trusting only the new certificate is served");
    assert_eq!(kept.get(format!("{base}/readyz")).send().await.unwrap().status(), 200, "the old connection lives on");

    // A key that is not the certificate's, then a file that is no PEM: each
    // reload is refused, said so, and the pair in use stays.
    for (cert, key) in [(second.cert_pem.as_str(), first.key_pem.as_str()), ("not a certificate", "nor a key")] {
        let refusals = std::fs::read_to_string(&f.log).unwrap().matches("not reloaded").count();
        tls::replace(&f.cert, cert);
        tls::replace(&f.key, key);
        signal(herald.id(), "HUP");
        eventually("the reload is refused", Duration::from_secs(10), || async {
            let log = std::fs::read_to_string(&f.log).unwrap();
            (log.matches("not reloaded").count() > refusals).then_some(())
        })
        .await;
        assert_eq!(tls::presented(addr, &[&first, &second]).await.unwrap(), second.der, "the pair in use stays");
        let resp = tls::client(&second).get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let log = std::fs::read_to_string(&f.log).unwrap();
    assert!(log.contains(&f.key.display().to_string()), "the refusal names the file:\n{log}");

    stop(herald);
}

#[tokio::test]
async fn herald_will_not_start_on_a_pair_that_does_not_hold_together() {
    let dir = tempfile::tempdir().unwrap();
    let f = files(dir.path(), free_port());
    let (one, other) = (Pair::new(), Pair::new());
    let cases: [(&str, Option<&str>, &str); 3] = [
        ("a key that is not the certificate's", Some(&other.key_pem), "key"),
        ("no key file", None, "key"),
        ("a certificate file with no certificate", Some(&one.key_pem), "certificate"),
    ];
    for (what, key, named) in cases {
        let cert = if named == "certificate" { "no certificate here\n" } else { one.cert_pem.as_str() };
        tls::replace(&f.cert, cert);
        let _ = std::fs::remove_file(&f.key);
        if let Some(key) = key {
            tls::replace(&f.key, key);
        }
        let mut herald = start(&f);
        let exited = herald_testkit::until(Duration::from_secs(30), || {
            let status = herald.try_wait().unwrap();
            async move { status }
        })
        .await;
        let Some(status) = exited else {
            let _ = herald.kill();
            panic!("{what}: herald started");
        };
        let said = std::fs::read_to_string(&f.log).unwrap();
        assert!(!status.success(), "{what}: herald exited {status}");
        let file = if named == "key" { &f.key } else { &f.cert };
        assert!(said.contains(&format!("TLS {named} {}", file.display())), "{what}: {said}");
    }
}
