//! The `herald serve` process of the run: its configuration and workflows,
//! and its kills and restarts on the same data.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    time::Duration,
};

use herald_testkit::{
    eventually, free_port,
    process::{Serve, serve},
    ready,
};
use serde_json::Value;

const RETRY: &str = "retry = { attempts = 12, initial = \"20ms\", max = \"300ms\" }\ntimeout = \"3s\"\n";

/// The two workflows: an order (calls with compensations, a publish, a
/// confirmation by callback) and a shipment (an await with a timeout, then
/// a call).
fn workflows() -> [(&'static str, String); 2] {
    let call = |name: &str, undo: bool| {
        let undo = if undo {
            format!("compensate = {{ service = \"svc\", path = \"/{name}/undo\" }}\n")
        } else {
            String::new()
        };
        format!("[[steps]]\nname = \"{name}\"\ncall = {{ service = \"svc\", path = \"/{name}\" }}\n{RETRY}{undo}")
    };
    let order = format!(
        "name = \"order\"\nlabel = \"Order\"\nsubject = \"/customer\"\n{}{}\
         [[steps]]\nname = \"announce\"\npublish = {{ topic = \"orders\", type = \"order.placed\" }}\n{}",
        call("reserve", true),
        call("charge", true),
        call("confirm", false)
    );
    let ship = format!(
        "name = \"ship\"\nlabel = \"Shipping\"\nsubject = \"/customer\"\n\
         [[steps]]\nname = \"wait\"\nawait = {{ topic = \"parcels\", type = \"parcel.arrived\", timeout = \"8s\" }}\n{}",
        call("deliver", false)
    );
    [("order.toml", order), ("ship.toml", ship)]
}

pub struct Herald {
    pub base: String,
    config: PathBuf,
    child: Child,
}

impl Herald {
    /// herald on `dir`, its services at `svc`, each topic pushed back to it.
    pub async fn start(dir: &Path, svc: &str) -> Herald {
        let wf = dir.join("workflows");
        std::fs::create_dir_all(&wf).unwrap();
        for (file, text) in workflows() {
            std::fs::write(wf.join(file), text).unwrap();
        }
        let port = free_port();
        let config = dir.join("herald.toml");
        let mut toml = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nworkflows = \"{}\"\n\
             [engine]\npoll_interval = \"100ms\"\n[services.svc]\ninstances = [\"{svc}\"]\n",
            dir.join("data").display(),
            wf.display()
        );
        for topic in ["orders", "parcels"] {
            toml.push_str(&format!(
                "[subscriptions.seen-{topic}]\ntopic = \"{topic}\"\npush = {{ service = \"svc\", path = \"/events/{topic}\" }}\n"
            ));
        }
        std::fs::write(&config, toml).unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let child = spawn(&config);
        let mut herald = Herald { base, config, child };
        herald.ready().await;
        herald
    }

    async fn ready(&mut self) {
        let http = herald_testkit::client_within(Duration::from_secs(5));
        assert!(ready(&http, &self.base, Duration::from_secs(30)).await, "herald did not become ready");
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Started again on the same configuration and data; ready.
    pub async fn restart(&mut self) {
        self.child = spawn(&self.config);
        self.ready().await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }

    /// How many operations herald holds, counted page by page.
    pub async fn count(&self, http: &reqwest::Client) -> usize {
        let (mut n, mut cursor) = (0, String::new());
        loop {
            let page: Value = http
                .get(format!("{}/v1/operations?limit=200{cursor}", self.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            n += page["items"].as_array().unwrap().len();
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return n,
            }
        }
    }

    /// Every operation of `ids` once all have ended (succeeded, failed or
    /// cancelled), by id; fails the test, naming those still going, after
    /// four minutes.
    pub async fn all_ended(&self, http: &reqwest::Client, ids: Vec<String>) -> HashMap<String, Value> {
        let mut ended = HashMap::new();
        let mut going = ids;
        eventually("every accepted operation ended", Duration::from_secs(240), async || {
            let mut still = Vec::new();
            for id in std::mem::take(&mut going) {
                let op: Option<Value> = match http.get(format!("{}/v1/operations/{id}", self.base)).send().await {
                    Ok(r) if r.status() == 200 => r.json().await.ok(),
                    _ => None,
                };
                match op {
                    Some(op) if matches!(op["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) => {
                        ended.insert(id, op);
                    }
                    _ => still.push(id),
                }
            }
            going = still;
            match going.len() {
                0 => Ok(()),
                n => Err(format!("{n} still going, e.g. {:?}", &going[..n.min(5)])),
            }
        })
        .await;
        ended
    }
}

impl Drop for Herald {
    /// A failed test leaves no herald behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Path) -> Child {
    serve(env!("CARGO_BIN_EXE_herald"), Serve::Config(config)).spawn().expect("the herald binary starts")
}
