//! Workflow files as text, the shapes the tests and the bench both run.

/// One `[[steps]]` entry: step `name` calling `path` on `service`, then
/// `extra` (whole lines, each ending in a newline: retry, timeout, …).
pub fn call(name: &str, service: &str, path: &str, extra: &str) -> String {
    format!("[[steps]]\nname = \"{name}\"\ncall = {{ service = \"{service}\", path = \"{path}\" }}\n{extra}")
}

/// A workflow called `name` running `steps` (from [`call`]) in order.
pub fn named(name: &str, steps: impl IntoIterator<Item = String>) -> String {
    steps.into_iter().fold(format!("name = \"{name}\"\n"), |text, step| text + &step)
}

/// A workflow of named sequential steps on service `svc`, each at `/<name>`,
/// with a compensation at `/<name>/undo`; `extra` is added to the top.
/// Tests edit this text by `replace`: its lines stay as they are, in order.
pub fn sequential(name: &str, steps: &[&str], extra: &str) -> String {
    let mut s = format!("name = \"{name}\"\nlabel = \"Test run\"\n{extra}\n");
    for st in steps {
        s.push_str(&format!(
            "[[steps]]\nname = \"{st}\"\nlabel = \"Doing {st}\"\ndone_label = \"{st} done\"\ncall = {{ service = \"svc\", path = \"/{st}\" }}\nretry = {{ attempts = 3, initial = \"20ms\", max = \"100ms\" }}\ntimeout = \"5s\"\ncompensate = {{ service = \"svc\", path = \"/{st}/undo\" }}\n"
        ));
    }
    s
}
