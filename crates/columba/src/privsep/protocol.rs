//! The messages Columba's processes exchange, in [`super::ipc`] frames.
//!
//! - login → auth: `verify` (a password), `sasl` (one SASL step), `sasl-abort`, `mechanisms`;
//!   auth answers `ok` (with a one-time login token), `fail`, `challenge`, `mechanisms`.
//! - master → auth: `redeem` a token for the user's full record (uid, gid, home, fields);
//!   auth answers `user`. The login process never sees more than the user's name, and the
//!   master believes nothing the login process says about who logged in.
//! - login → master: `hand-off` (the token, the connection's facts, and its socket).
//! - master → worker: `serve` (the user's record, the connection's facts, and its socket);
//!   worker → master: `ended` when a connection is over.

use std::net::SocketAddr;
use std::path::PathBuf;

use auth::sasl::SaslError;
use auth::{FailureKind, UserRecord};
use session_api::{ConnectionInfo, LoggedIn};

use super::ipc::{FrameReader, FrameWriter, IpcError};

/// Which protocol a handed-off connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
        }
    }

    fn parse(name: &str) -> Result<Protocol, IpcError> {
        match name {
            "imap" => Ok(Protocol::Imap),
            "pop3" => Ok(Protocol::Pop3),
            _ => Err(IpcError::Malformed("unknown protocol")),
        }
    }
}

pub fn put_record(w: &mut FrameWriter, record: &UserRecord) {
    w.str(&record.name)
        .opt_u32(record.uid)
        .opt_u32(record.gid)
        .opt_str(record.home.as_ref().and_then(|h| h.to_str()))
        .u64(record.extra.len() as u64);
    for (key, value) in &record.extra {
        w.str(key).str(value);
    }
}

pub fn get_record(r: &mut FrameReader) -> Result<UserRecord, IpcError> {
    let name = r.string()?;
    let uid = r.opt_u32()?;
    let gid = r.opt_u32()?;
    let home = r.opt_string()?.map(PathBuf::from);
    let count = r.u64()?;
    if count > 10_000 {
        return Err(IpcError::Malformed("too many user fields"));
    }
    let mut extra = Vec::with_capacity(count as usize);
    for _ in 0..count {
        extra.push((r.string()?, r.string()?));
    }
    Ok(UserRecord {
        name,
        uid,
        gid,
        home,
        extra,
    })
}

/// The facts of a handed-off connection.
pub struct Connection {
    pub protocol: Protocol,
    pub info: ConnectionInfo,
    pub method: String,
    pub tag: Option<String>,
    pub pending_input: Vec<u8>,
    pub tls: bool,
}

impl Connection {
    pub fn new(protocol: Protocol, info: ConnectionInfo, login: &LoggedIn) -> Connection {
        Connection {
            protocol,
            info,
            method: login.method.clone(),
            tag: login.tag.clone(),
            pending_input: login.pending_input.clone(),
            tls: login.tls,
        }
    }

    pub fn put(&self, w: &mut FrameWriter) {
        w.str(self.protocol.name())
            .str(&self.info.remote.to_string())
            .str(&self.info.local.to_string())
            .u64(u64::from(self.info.implicit_tls))
            .str(&self.info.session_id)
            .str(&self.method)
            .opt_str(self.tag.as_deref())
            .bytes(&self.pending_input)
            .u64(u64::from(self.tls));
    }

    pub fn get(r: &mut FrameReader) -> Result<Connection, IpcError> {
        let protocol = Protocol::parse(&r.string()?)?;
        let addr = |s: String| -> Result<SocketAddr, IpcError> {
            s.parse().map_err(|_| IpcError::Malformed("socket address"))
        };
        let remote = addr(r.string()?)?;
        let local = addr(r.string()?)?;
        let implicit_tls = r.u64()? == 1;
        let session_id = r.string()?;
        Ok(Connection {
            protocol,
            info: ConnectionInfo {
                remote,
                local,
                implicit_tls,
                session_id,
            },
            method: r.string()?,
            tag: r.opt_string()?,
            pending_input: r.bytes()?,
            tls: r.u64()? == 1,
        })
    }

    pub fn logged_in(self, user: UserRecord) -> (Protocol, ConnectionInfo, LoggedIn) {
        (
            self.protocol,
            self.info,
            LoggedIn {
                user,
                method: self.method,
                tag: self.tag,
                pending_input: self.pending_input,
                tls: self.tls,
            },
        )
    }
}

/// A failure as it crosses the wire: the kind, and for a malformed exchange which rule the
/// client broke (the auth process's text stays in its log).
pub fn put_failure(w: &mut FrameWriter, user: &str, kind: &FailureKind) {
    let (name, detail) = match kind {
        FailureKind::UnknownUser => ("unknown", String::new()),
        FailureKind::WrongPassword => ("wrong", String::new()),
        FailureKind::Internal(message) => ("internal", message.clone()),
        FailureKind::Malformed(e) => (
            "malformed",
            match e {
                SaslError::TooLong => "too-long",
                SaslError::Malformed(_) => "syntax",
                SaslError::AuthzidNotPermitted => "authzid",
                SaslError::Finished => "finished",
                SaslError::WrongProof => "wrong-proof",
                SaslError::NoSecret => "no-secret",
                SaslError::OutOfTurn => "out-of-turn",
            }
            .to_owned(),
        ),
    };
    w.str(user).str(name).str(&detail);
}

pub fn get_failure(r: &mut FrameReader) -> Result<(String, FailureKind), IpcError> {
    let user = r.string()?;
    let name = r.string()?;
    let detail = r.string()?;
    let kind = match name.as_str() {
        "unknown" => FailureKind::UnknownUser,
        "wrong" => FailureKind::WrongPassword,
        "internal" => FailureKind::Internal(detail),
        "malformed" => FailureKind::Malformed(match detail.as_str() {
            "too-long" => SaslError::TooLong,
            "authzid" => SaslError::AuthzidNotPermitted,
            "finished" => SaslError::Finished,
            "wrong-proof" => SaslError::WrongProof,
            "no-secret" => SaslError::NoSecret,
            "out-of-turn" => SaslError::OutOfTurn,
            _ => SaslError::Malformed("rejected by the auth process"),
        }),
        _ => return Err(IpcError::Malformed("unknown failure kind")),
    };
    Ok((user, kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privsep::ipc::channel;

    #[tokio::test]
    async fn records_connections_and_failures_round_trip() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (tx, _) = channel(a).unwrap();
        let (_, mut rx) = channel(b).unwrap();
        let record = UserRecord {
            name: "alice".into(),
            uid: Some(1001),
            gid: None,
            home: Some("/home/alice".into()),
            extra: vec![("userdb_mail".into(), "maildir:~/Mail".into())],
        };
        let connection = Connection {
            protocol: Protocol::Pop3,
            info: ConnectionInfo {
                remote: "[::1]:4000".parse().unwrap(),
                local: "127.0.0.1:110".parse().unwrap(),
                implicit_tls: true,
                session_id: "abc".into(),
            },
            method: "PLAIN".into(),
            tag: Some("a1".into()),
            pending_input: b"a2 NOOP\r\n".to_vec(),
            tls: true,
        };
        let mut w = FrameWriter::new("test");
        put_record(&mut w, &record);
        connection.put(&mut w);
        put_failure(&mut w, "bob", &FailureKind::Malformed(SaslError::TooLong));
        put_failure(&mut w, "", &FailureKind::Internal("down".into()));
        tx.send(w).await.unwrap();

        let mut r = rx.recv().await.unwrap().unwrap();
        assert_eq!(r.kind().unwrap(), "test");
        assert_eq!(get_record(&mut r).unwrap(), record);
        let got = Connection::get(&mut r).unwrap();
        let (protocol, info, login) = got.logged_in(record.clone());
        assert_eq!(protocol, Protocol::Pop3);
        assert_eq!(info.remote, connection.info.remote);
        assert!(info.implicit_tls);
        assert_eq!(login.tag.as_deref(), Some("a1"));
        assert_eq!(login.pending_input, b"a2 NOOP\r\n");
        assert_eq!(
            get_failure(&mut r).unwrap(),
            ("bob".into(), FailureKind::Malformed(SaslError::TooLong))
        );
        assert_eq!(
            get_failure(&mut r).unwrap(),
            ("".into(), FailureKind::Internal("down".into()))
        );
    }
}
