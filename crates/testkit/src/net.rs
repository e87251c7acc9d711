/// A loopback port nothing listens on (yet): connections to it are refused
/// until something binds it, for tests of a peer that comes up late or a
/// process told its port in advance.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
