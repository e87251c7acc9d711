//! Starting operations over one plain HTTP/1.1 connection per client task.
//! A pooled client (reqwest) spends about 40 µs of CPU per request here;
//! the two cores are shared with herald, so the load generator keeps to
//! hyper's bare connection, as wrk would.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Request,
    client::conn::http1::{self, SendRequest},
    header::{self, HeaderValue},
};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

pub struct Starter {
    send: SendRequest<Full<Bytes>>,
    path: String,
    host: HeaderValue,
}

#[derive(Deserialize)]
struct Started {
    id: String,
}

impl Starter {
    /// Connects to the herald at `url` (`http://host:port`) to start `workflow`.
    pub async fn connect(url: &str, workflow: &str) -> anyhow::Result<Self> {
        let authority = url.strip_prefix("http://").context("the harness speaks plain http:// to herald")?;
        let tcp = tokio::net::TcpStream::connect(authority).await.with_context(|| format!("connecting to {url}"))?;
        tcp.set_nodelay(true)?;
        let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(Starter {
            send,
            path: format!("/v1/workflows/{workflow}/operations"),
            host: HeaderValue::from_str(authority)?,
        })
    }

    /// Starts one operation; answers its id once herald has said 202.
    pub async fn start(&mut self, body: String) -> anyhow::Result<String> {
        let req = Request::post(self.path.as_str())
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            // Only the id is needed: the minimal answer (RFC 7240) spares
            // both sides the whole operation's JSON.
            .header("prefer", "return=minimal")
            .body(Full::new(Bytes::from(body)))?;
        self.send.ready().await?;
        let resp = self.send.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if status != 202 {
            bail!("start answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice::<Started>(&body)?.id)
    }
}
