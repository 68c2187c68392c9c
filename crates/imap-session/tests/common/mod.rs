//! What the session tests that drive whole conversations in code share: a context over the
//! two-user test backend, and a session started on an in-memory stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_session::{ConnectionInfo, ImapSettings, LoginPenalty, SessionContext};
use test_support::transcript::TestBackend;

/// A listener's context: alice and bob with their Maildirs under `root`; IDLE polls quickly.
pub fn context(root: &std::path::Path) -> Arc<SessionContext> {
    Arc::new(SessionContext {
        settings: ImapSettings {
            idle_poll_interval: Duration::from_millis(50),
            ..ImapSettings::default()
        },
        backend: Arc::new(TestBackend {
            root: root.to_owned(),
        }),
        starttls: None,
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
    })
}

/// Serves `stream` as a connection from loopback.
pub fn serve<S>(ctx: &Arc<SessionContext>, stream: S, id: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let info = ConnectionInfo {
        remote: "127.0.0.1:5000".parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:143".parse().unwrap(),
        implicit_tls: false,
        session_id: id.into(),
    };
    tokio::spawn(imap_session::serve(Box::new(stream), ctx.clone(), info));
}
