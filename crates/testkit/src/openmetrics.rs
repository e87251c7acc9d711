//! Reading herald's `/metrics` as Prometheus would. The text goes through
//! the Prometheus project's own strict OpenMetrics parser (Python's
//! `prometheus_client`, which `.ci/run` installs into `target/py-tools`);
//! without it, and unless `HERALD_TEST_TOOLS=require` (as in CI), only a
//! reading of its sample lines is checked, and a note says so.

use std::{collections::BTreeMap, io::Write, process::Command};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug)]
pub struct Exposition(pub Vec<Sample>);

const PARSE: &str = "\
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({'name': s.name, 'labels': s.labels, 'value': s.value})
print(json.dumps(out))
";

impl Exposition {
    /// The samples of `text`; panics, saying why, where Prometheus's
    /// parser refuses it.
    pub fn parse(text: &str) -> Exposition {
        let required = crate::tools::required();
        let child = Command::new("python3")
            .args(["-c", PARSE])
            .env("PYTHONPATH", crate::tools::in_target("py-tools"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let out = child.and_then(|mut c| {
            c.stdin.take().expect("piped").write_all(text.as_bytes())?;
            c.wait_with_output()
        });
        match out {
            Ok(out) if out.status.success() => {
                let samples: Vec<Value> = serde_json::from_slice(&out.stdout).expect("the parser's JSON");
                Exposition(samples.iter().map(sample).collect())
            }
            Ok(out) if !String::from_utf8_lossy(&out.stderr).contains("No module named 'prometheus_client'") => {
                panic!("Prometheus's parser refuses the exposition: {}\n{text}", String::from_utf8_lossy(&out.stderr))
            }
            _ if required => panic!(
                "HERALD_TEST_TOOLS=require: python3 with prometheus_client is needed \
                 (`pip install --target target/py-tools prometheus-client`)"
            ),
            _ => {
                eprintln!("note: prometheus_client is not installed; the exposition's sample lines are read as text");
                Exposition(text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(line).collect())
            }
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`
    /// (0 when there is none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// How many samples named `name` have `labels` among theirs.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.matching(name, labels).count()
    }

    fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.0.iter().filter(move |s| {
            s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v))
        })
    }
}

fn sample(v: &Value) -> Sample {
    let labels = v["labels"].as_object().expect("labels");
    Sample {
        name: v["name"].as_str().expect("a name").to_string(),
        labels: labels.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect(),
        value: v["value"].as_f64().unwrap_or(f64::NAN),
    }
}

/// `name{a="x",b="y"} value`, for label values without `,` `"` or `}`.
fn line(l: &str) -> Sample {
    let (head, value) = l.rsplit_once(' ').expect("a sample line");
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, rest.trim_end_matches('}')),
        None => (head, ""),
    };
    let labels = labels
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().expect("a number"),
    };
    Sample { name: name.to_string(), labels, value }
}
