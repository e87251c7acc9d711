//! Reading from and writing to a socket the lane holds, client's or
//! instance's.

use std::io;

use bytes::BytesMut;
use tokio::{
    io::{AsyncWriteExt, Interest},
    net::TcpStream,
};

/// Writes all of `bytes` to the client, unless it reads nothing for
/// [`herald_http::conn::WRITE_TIMEOUT`].
pub async fn write(client: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    match tokio::time::timeout(herald_http::conn::WRITE_TIMEOUT, client.write_all(bytes)).await {
        Ok(written) => written,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Reads what the socket holds into `buf`'s spare room. A read that does
/// not fill it took all there was: the socket is then marked not ready, as
/// nginx does, so the next read waits for the runtime's word instead of
/// first asking the kernel in vain (two calls fewer per request). The mark
/// is made against the readiness seen before the read, so news of bytes
/// that came after it is never lost.
pub async fn read(tcp: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() == buf.len() {
        buf.reserve(4096);
    }
    let room = buf.capacity() - buf.len();
    loop {
        tcp.readable().await?;
        let mut got = 0;
        let read = tcp.try_io(Interest::READABLE, || {
            got = tcp.try_read_buf(buf)?;
            if got > 0 && got < room { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
        });
        match read {
            Ok(()) => return Ok(got),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => return Ok(got),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}
