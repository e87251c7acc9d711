//! nginx from Debian's package, in a directory of its own: the gateway
//! benchmark's yardstick, and the load balancer of the rolling-restart
//! test. The caller gives what goes inside `http { }`; the rest (no
//! daemon, pid and temporary files in the directory) is set here.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

/// A running nginx; stopped when dropped.
pub struct Nginx {
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// Where Debian puts nginx, if it is installed.
pub fn binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists())
}

impl Nginx {
    /// Starts nginx with `http` as its `http { }` block's contents, and
    /// waits until `listen` (`host:port`, one of its servers) takes
    /// connections. `None` when nginx is not installed.
    pub fn start(dir: &Path, http: &str, listen: &str) -> anyhow::Result<Option<Nginx>> {
        let Some(bin) = binary() else { return Ok(None) };
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                r#"daemon off;
worker_processes auto;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 32768; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}
}}
"#,
                dir = dir.display()
            ),
        )?;
        let child = Command::new(bin)
            .args(["-p", &dir.display().to_string(), "-c", &conf.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting nginx")?;
        let nginx = Nginx { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(listen).is_err() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            anyhow::ensure!(Instant::now() < deadline, "nginx did not start: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(nginx))
    }
}
