//! Limits a password guesser and a greedy client meet (SECURITY.md): the per-address penalty
//! on failed logins, which another address does not share, and the number of connections one
//! user may hold from one address (Dovecot's `mail_max_userip_connections`).

mod common;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd as _;

use common::{PASSWORD, RawClient, Server, USER};

/// A connection to `to` from the loopback address `from` (any 127.0.0.0/8 address is this
/// machine on Linux), so a test can be two clients on two addresses.
fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let (IpAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        panic!("IPv4 only");
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns, with sockaddr_in values
    // that live across the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let local = sockaddr(from, 0);
        let remote = sockaddr(*to.ip(), to.port());
        assert_eq!(
            libc::bind(fd, (&raw const local).cast(), len),
            0,
            "bind {from}"
        );
        assert_eq!(
            libc::connect(fd, (&raw const remote).cast(), len),
            0,
            "connect {to}"
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// The `delay=` of the failed-login lines for `ip`, in order.
fn logged_delays(server: &mut Server, ip: &str) -> Vec<u64> {
    server
        .log()
        .iter()
        .filter(|l| l.contains("Authentication failed") && l.contains(&format!("rip={ip},")))
        .filter_map(|l| l.rsplit_once("delay=")?.1.strip_suffix("ms")?.parse().ok())
        .collect()
}

#[test]
fn fifty_wrong_passwords_slow_their_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(
        &config,
        "[auth]\nfailure_delay_ms = 5\nfailure_delay_max_ms = 40\n",
    )
    .unwrap();
    let mut server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let attacker: IpAddr = "127.0.0.1".parse().unwrap();
    let other: IpAddr = "127.0.0.2".parse().unwrap();

    // Three tries per connection (then the server hangs up), 50 in all.
    let mut tries = 0;
    while tries < 50 {
        let mut c = RawClient::over(connect_from(attacker, server.imap));
        for _ in 0..3 {
            if tries == 50 {
                break;
            }
            let reply = c.command("a", &format!("LOGIN {USER} wrong-{tries}"));
            assert_eq!(
                reply.last().unwrap(),
                "a NO [AUTHENTICATIONFAILED] Authentication failed."
            );
            tries += 1;
        }
    }
    // Each failure was logged before it was answered; the log reader may trail a little.
    let mut delays = Vec::new();
    for _ in 0..100 {
        delays = logged_delays(&mut server, "127.0.0.1");
        if delays.len() == 50 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(delays.len(), 50, "{delays:?}");
    // Each failure doubles the wait for that address, up to the ceiling.
    assert_eq!(&delays[..5], &[5, 10, 20, 40, 40], "{delays:?}");
    assert!(delays[4..].iter().all(|&d| d == 40), "{delays:?}");

    // Another address starts from the first step, and its right password works at once.
    let mut c = RawClient::over(connect_from(other, server.imap));
    let reply = c.command("b", &format!("LOGIN {USER} wrong"));
    assert!(reply.last().unwrap().starts_with("b NO"), "{reply:?}");
    let reply = c.command("c", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(reply.last().unwrap().starts_with("c OK"), "{reply:?}");
    server.wait_for_log("rip=127.0.0.2, lip=127.0.0.1, session=");
    assert_eq!(logged_delays(&mut server, "127.0.0.2"), [5]);
}

#[test]
fn connections_per_user_and_address_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, "[server]\nmax_userip_connections = 2\n").unwrap();
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let login = |c: &mut RawClient| {
        c.command("a", &format!("LOGIN {USER} {PASSWORD}"))
            .pop()
            .unwrap()
    };
    let mut first = RawClient::connect(server.imap);
    assert!(login(&mut first).starts_with("a OK"));
    let mut second = RawClient::connect(server.imap);
    assert!(login(&mut second).starts_with("a OK"));
    let mut third = RawClient::connect(server.imap);
    assert_eq!(
        login(&mut third),
        "a NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=2)"
    );
    // The refused one may try again once a place is free; from another address it always may.
    first.command("z", "LOGOUT");
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        if login(&mut third).starts_with("a OK") {
            again = Some(());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(again.is_some(), "a place was given back at LOGOUT");
    let mut elsewhere = RawClient::over(connect_from("127.0.0.2".parse().unwrap(), server.imap));
    assert!(login(&mut elsewhere).starts_with("a OK"));
    // POP3 counts separately (and holds the maildrop lock besides).
    let mut p = TcpStream::connect(server.pop3).unwrap();
    let mut r = std::io::BufReader::new(p.try_clone().unwrap());
    let mut line = String::new();
    let mut read = || {
        line.clear();
        std::io::BufRead::read_line(&mut r, &mut line).unwrap();
        line.trim_end().to_owned()
    };
    assert!(read().starts_with("+OK"));
    std::io::Write::write_all(
        &mut p,
        format!("USER {USER}\r\nPASS {PASSWORD}\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(read(), "+OK");
    assert_eq!(read(), "+OK Logged in.");
    drop((second, third));
}

#[test]
fn connections_before_login_are_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, "[server]\nmax_prelogin_connections_per_ip = 3\n").unwrap();
    let mut server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let mut waiting: Vec<RawClient> = (0..3).map(|_| RawClient::connect(server.imap)).collect();
    // The fourth from the same address is turned away, told why; POP3 too.
    let mut refused = TcpStream::connect(server.imap).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut refused, &mut text).unwrap();
    assert_eq!(text, "* BYE Too many connections from your address.\r\n");
    let mut refused = TcpStream::connect(server.pop3).unwrap();
    text.clear();
    std::io::Read::read_to_string(&mut refused, &mut text).unwrap();
    assert_eq!(
        text,
        "-ERR [SYS/TEMP] Too many connections from your address.\r\n"
    );
    server.wait_for_log("Too many connections from this address before login: rip=127.0.0.1");
    // Another address is not affected.
    let _other = RawClient::over(connect_from("127.0.0.2".parse().unwrap(), server.imap));
    // A connection that logs in no longer counts, nor does one that went away.
    let reply = waiting[0].command("a", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(reply.last().unwrap().starts_with("a OK"), "{reply:?}");
    let _fourth = RawClient::connect(server.imap);
    drop(waiting.pop());
    let mut admitted = false;
    for _ in 0..100 {
        if RawClient::try_connect(server.imap).is_some() {
            admitted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(admitted, "the closed connection's place was given back");
}
