//! A local SMTP sink: a real SMTP server on loopback that accepts every
//! message and keeps it in memory, so `herald demo` can send email that
//! never leaves the machine and tests can read what arrived.
//!
//! Written here rather than taken from a crate: the embeddable SMTP servers
//! we found are synchronous or unmaintained, and a sink needs only the
//! plain dialogue (HELO/EHLO, MAIL, RCPT, DATA, QUIT), about sixty lines.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// One message as the sink received it.
#[derive(Clone, Debug, Serialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: headers, a blank line, the body.
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

/// Largest message kept, so a runaway client cannot fill memory.
const MAX_MESSAGE: usize = 1024 * 1024;

impl SmtpSink {
    /// Listens on 127.0.0.1 (port 0 picks one) and serves in the background.
    pub async fn start(port: u16) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let sink = SmtpSink { port: listener.local_addr()?.port(), mails: Arc::default() };
        let mails = sink.mails.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let mails = mails.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(tcp, &mails).await {
                        tracing::debug!(error = %e, "smtp session ended");
                    }
                });
            }
        });
        Ok(sink)
    }

    /// Every message received, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn session(tcp: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    let (rd, mut wr) = tcp.into_split();
    let mut lines = BufReader::new(rd).lines();
    wr.write_all(b"220 herald-demo-sink ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 herald-demo-sink\r\n"
        } else if let Some(addr) = upper.strip_prefix("MAIL FROM:").map(|_| &line[10..]) {
            from = addr.trim().trim_matches(['<', '>']).to_string();
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            wr.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                if data.len() < MAX_MESSAGE {
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push('\n');
                }
            }
            let mail = Mail { from: from.clone(), to: std::mem::take(&mut to), data };
            mails.lock().unwrap_or_else(|p| p.into_inner()).push(mail);
            b"250 OK: queued\r\n"
        } else if upper == "QUIT" {
            wr.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 Command not implemented\r\n"
        };
        wr.write_all(reply).await?;
    }
    Ok(())
}
