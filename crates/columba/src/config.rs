//! The configuration file: TOML, every setting optional, with defaults that run a development
//! server on loopback out of one data directory. Paths left unset live under `data_dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Version of the configuration schema; bumped only with a migration, so an old file keeps working.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub version: u32,
    /// Where the embedded defaults keep the certificate, the passwd-file and mail.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub imap: ImapConfig,
    pub pop3: Pop3Config,
    pub lmtp: LmtpConfig,
    pub delivery: DeliveryConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
}

/// How the server divides itself into processes, and whom it runs as (SECURITY.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub process_model: ProcessModel,
    /// The unprivileged user the server becomes after binding its ports when started as root:
    /// the login process's user when separated, the whole server's when single. Unset: the
    /// owner of the data directory (single), `columba` (separated; created if missing).
    pub user: Option<String>,
    /// Separated only: the user whose uid serves virtual users that have none of their own
    /// (Dovecot's `mail_uid`). It must not be `user`: the login process must not read mail.
    pub mail_user: Option<String>,
    /// Separated only: how long a user's mail process stays after their last connection, so a
    /// client that reconnects finds its mailboxes still open.
    pub worker_linger_secs: u64,
    /// Logged-in connections one user may hold from one address, per protocol (Dovecot's
    /// `mail_max_userip_connections`); 0 for no limit.
    pub max_userip_connections: usize,
    /// Connections one address may hold before they log in; 0 for no limit.
    pub max_prelogin_connections_per_ip: usize,
}

/// `auto`: separated when started as root with system users (userdb "passwd", passdb "shadow"
/// or "pam"), single otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessModel {
    #[default]
    Auto,
    /// One process serves everything; all mail belongs to one uid (virtual users).
    Single,
    /// Login, auth and per-user mail processes; needs root.
    Separated,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// Cleartext listeners, offering STARTTLS (production: `0.0.0.0:143`).
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (production: `0.0.0.0:993`).
    pub listen_tls: Vec<SocketAddr>,
    /// Longest command line, literals excluded.
    pub max_line_length: usize,
    /// Largest message APPEND accepts, in bytes.
    pub max_message_size: u64,
    /// Seconds a client may take to log in.
    pub login_timeout_secs: u64,
    /// Seconds of silence before a logged-in client is disconnected (RFC 9051: at least 1800).
    pub idle_timeout_secs: u64,
    /// Mailboxes created and subscribed at login when missing (Dovecot's `auto = subscribe`).
    pub auto_create: Vec<String>,
    /// Mailbox names and their RFC 6154 special-use attribute, shown in LIST.
    pub special_use: std::collections::BTreeMap<String, String>,
    /// Offer UTF8=ACCEPT (RFC 6855). Off by default: once offered, an APPEND with 8-bit header
    /// octets from a client that did not enable it must be refused, and migration tools copy
    /// old mail with raw 8-bit headers. IMAP4rev2 clients get UTF-8 either way.
    pub utf8_accept: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3Config {
    /// Cleartext listeners, offering STLS (production: `0.0.0.0:110`). Empty: no POP3.
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (production: `0.0.0.0:995`).
    pub listen_tls: Vec<SocketAddr>,
    /// How UIDLs are made for messages without one stored by a migration (Dovecot's
    /// `pop3_uidl_format`, whose default this is): `%u` the UID, `%v` the UIDVALIDITY, each
    /// optionally as `%0<width>` (zero-padded) and `X` (lower-case hex, as Dovecot's); `%%` a
    /// percent sign; anything else printable is copied. `%u` is required.
    pub uidl_format: String,
    /// One POP3 session per user at a time (RFC 1939 8; Dovecot's `pop3_lock_session`): a second
    /// one gets `-ERR [IN-USE]`. IMAP is never locked out. The lock is per server process.
    pub lock_session: bool,
    /// Longest command line (RFC 2449 says 255; long passwords need more).
    pub max_line_length: usize,
    /// Seconds a client may take to log in.
    pub login_timeout_secs: u64,
    /// Seconds of silence before a logged-in client is disconnected, without deleting anything
    /// (RFC 1939 3: at least 600).
    pub idle_timeout_secs: u64,
}

/// The LMTP server (RFC 2033) an MTA delivers through (Postfix `mailbox_transport =
/// lmtp:inet:127.0.0.1:24` or `lmtp:unix:/path`). Off unless a listener is configured. LMTP has
/// no authentication: listen only where the MTA alone can connect.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LmtpConfig {
    /// TCP listeners (`127.0.0.1:24`). Empty (the default): no LMTP over TCP.
    pub listen: Vec<SocketAddr>,
    /// Unix socket paths, created mode 0666 like a loopback port (restrict the directory
    /// they are in to limit who may deliver). Empty (the default): none.
    pub listen_unix: Vec<PathBuf>,
    /// Longest command line.
    pub max_line_length: usize,
    /// Recipients accepted in one transaction; more get `452 4.5.3` and are sent again by
    /// the MTA in another transaction.
    pub max_recipients: usize,
    /// Seconds of silence before the connection is closed.
    pub timeout_secs: u64,
    /// Connections served at once; more are told `421 4.3.2` and closed (the MTA retries).
    pub max_connections: usize,
    /// Check the quota at RCPT already, refusing a full mailbox before the message is sent
    /// (Dovecot's `lmtp_rcpt_check_quota`; the final check is always made at delivery).
    pub rcpt_check_quota: bool,
}

/// What LMTP and `columba deliver` share (Dovecot's LDA settings).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// The name in LMTP's greeting and `Received:` headers; default the system's host name.
    pub hostname: Option<String>,
    /// Largest message delivered, in bytes (LMTP advertises it as `SIZE`).
    pub max_message_size: u64,
    /// Characters separating a local part from its detail (`bob+lists@...` is bob's); the
    /// detail is dropped and mail goes to INBOX, as with Dovecot's defaults. Empty for none.
    pub recipient_delimiter: String,
    /// Over quota is a temporary failure (LMTP `452 4.2.2`, exit code 75) instead of a
    /// permanent one (`552 5.2.2`, exit code 77), so the MTA keeps the message and retries
    /// (Dovecot's `quota_full_tempfail`).
    pub quota_full_tempfail: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; default `<data_dir>/tls/cert.pem`, generated self-signed if missing.
    pub cert: Option<PathBuf>,
    /// PEM private key; default `<data_dir>/tls/key.pem`.
    pub key: Option<PathBuf>,
    /// PEM certificate authorities whose client certificates name users for SASL EXTERNAL.
    /// Read, but not yet used by the listeners (see `tls::ClientCertAuth`).
    pub client_ca: Option<PathBuf>,
    /// The certificate field that names the user: "common-name" (default) or "email" (the
    /// subjectAltName e-mail, else the subject's emailAddress).
    pub client_cert_username: ClientCertUsername,
}

/// Which field of a client certificate names the user (Dovecot's `ssl_cert_username_field`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertUsername {
    #[default]
    CommonName,
    Email,
}

/// Where passwords are checked (Dovecot's passdb drivers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PassdbKind {
    /// The Dovecot-format passwd-file of `passwd_file`.
    PasswdFile,
    /// System accounts: `/etc/shadow` (`[auth.shadow] file`), checked with the system's crypt(3).
    Shadow,
    /// The PAM service of `[auth.pam] service`.
    Pam,
    /// A qmail/Dovecot checkpassword program (`[auth.checkpassword]`).
    Checkpassword,
    /// An SQL database's `password_query` (`[auth.sql]`).
    Sql,
}

/// Where a logged-in user's uid, gid and home come from (Dovecot's userdb drivers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserdbKind {
    /// The passwd-file of `passwd_file`.
    PasswdFile,
    /// System accounts, through getpwnam (NSS).
    Passwd,
    /// The same uid and gid for everyone and a home template (`[auth.static]`).
    Static,
    /// Whatever the passdb returned (a checkpassword program's or SQL `password_query`'s
    /// `userdb_*` fields).
    Prefetch,
    /// An SQL database's `user_query` (`[auth.sql]`).
    Sql,
}

/// A uid or gid as a number or a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IdSpec {
    Number(u32),
    Name(String),
}

impl IdSpec {
    pub fn as_text(&self) -> String {
        match self {
            IdSpec::Number(n) => n.to_string(),
            IdSpec::Name(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Which database checks passwords: "passwd-file" (default), "shadow", "pam",
    /// "checkpassword" or "sql".
    pub passdb: PassdbKind,
    /// Which database gives uid, gid and home: "passwd-file" (default), "passwd", "static",
    /// "prefetch" or "sql".
    pub userdb: UserdbKind,
    /// Dovecot-format passwd-file; default `<data_dir>/users`.
    pub passwd_file: Option<PathBuf>,
    /// SASL mechanisms to offer: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256,
    /// OAUTHBEARER, XOAUTH2. (EXTERNAL is known but refused at start: the listeners do not
    /// pass client certificates to the sessions yet.) CRAM-MD5 and SCRAM need a passwd-file or SQL passdb holding
    /// `{PLAIN}` passwords or `{SCRAM-SHA-*}` keys; OAUTHBEARER and XOAUTH2 need
    /// `[auth.oauth2] introspection_url`.
    pub mechanisms: Vec<String>,
    /// Lowest uid that may own mail (Dovecot's `first_valid_uid`); uid 0 never may.
    pub first_valid_uid: u32,
    /// Highest uid that may own mail; 0 means no limit.
    pub last_valid_uid: u32,
    /// Lowest gid that may own mail (at least 1).
    pub first_valid_gid: u32,
    /// Highest gid that may own mail; 0 means no limit.
    pub last_valid_gid: u32,
    /// Lower-case user names before looking them up (Dovecot's default `%Lu`).
    pub lowercase_usernames: bool,
    /// Accept plaintext passwords on unencrypted connections from non-loopback peers
    /// (Dovecot's `disable_plaintext_auth = no`). Off by default.
    pub allow_plaintext_without_tls: bool,
    /// Delay before answering the first failed login from an address, in milliseconds; it doubles
    /// with each further failure from that address.
    pub failure_delay_ms: u64,
    /// Ceiling of that delay.
    pub failure_delay_max_ms: u64,
    pub shadow: ShadowConfig,
    pub pam: PamConfig,
    pub checkpassword: CheckpasswordConfig,
    pub sql: SqlConfig,
    pub oauth2: OAuth2Config,
    #[serde(rename = "static")]
    pub static_userdb: StaticConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// The shadow file (only root can read `/etc/shadow`).
    pub file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PamConfig {
    /// The PAM service: `/etc/pam.d/<service>` (without it, PAM uses `/etc/pam.d/other`).
    pub service: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpasswordConfig {
    /// The checkpassword program (absolute path); required for passdb = "checkpassword".
    pub program: Option<PathBuf>,
    /// The reply program it runs on success; default `columba checkpassword-reply` (this
    /// binary), which writes what Dovecot's `checkpassword-reply` writes.
    pub reply: Option<PathBuf>,
    /// Seconds the program may take.
    pub timeout_secs: u64,
}

/// The SQL database of passdb and userdb "sql" (Dovecot's `dovecot-sql.conf.ext`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    /// "sqlite" or "postgresql".
    pub driver: SqlDriverKind,
    /// SQLite: the database file. PostgreSQL: a connection string (`host=127.0.0.1 port=5432
    /// dbname=mail user=columba password=...`, or a `postgresql://` URL).
    pub connect: Option<String>,
    /// Returns `password` (and optionally `user` and `userdb_*` columns) for one user; `%u` is
    /// the user name, `%n` its part before `@`, `%d` after. Values are bound as parameters.
    pub password_query: String,
    /// Returns `uid`, `gid`, `home` and optionally `mail` for one user.
    pub user_query: String,
    /// The scheme of stored passwords without a `{SCHEME}` prefix (default: crypt(3) strings).
    pub default_pass_scheme: Option<String>,
    /// Connections kept open at most, each serving one lookup at a time (Dovecot's
    /// `maxconns`).
    pub max_connections: usize,
    /// PostgreSQL: a file holding the password, kept out of `connect` (which `columba config`
    /// prints).
    pub password_file: Option<PathBuf>,
}

/// How OAUTHBEARER and XOAUTH2 tokens are checked: RFC 7662 token introspection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2Config {
    /// The introspection endpoint (`http://` or `https://`); required for OAUTHBEARER and
    /// XOAUTH2.
    pub introspection_url: Option<String>,
    /// The field of the endpoint's answer that holds the user name: `username`, `email`...
    pub username_field: String,
    /// This server's client id at the authorization server (sent as HTTP Basic).
    pub client_id: Option<String>,
    /// A file holding the client secret (kept out of this file, which `columba config` shows).
    pub client_secret_file: Option<PathBuf>,
    /// A scope tokens must carry; also named to clients whose token is refused.
    pub scope: Option<String>,
    /// Seconds the endpoint may take to answer.
    pub timeout_secs: u64,
    /// PEM certificate authorities trusted for an `https://` endpoint; default the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SqlDriverKind {
    Sqlite,
    Postgresql,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    /// The uid every user's mail belongs to (number or user name); required for
    /// userdb = "static".
    pub uid: Option<IdSpec>,
    /// The gid (number or group name); required for userdb = "static".
    pub gid: Option<IdSpec>,
    /// The home directory: `%u` user name, `%n` its part before `@`, `%d` after `@`.
    pub home: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// Where a user's Maildir is: `%u` is the user name, `%h` the home directory from the
    /// userdb. Default `<data_dir>/mail/%u/Maildir` with userdb "passwd-file", `%h/Maildir`
    /// with the others (system users: `~/Maildir`).
    pub location: Option<String>,
    /// When the index's transaction log is fsynced (Dovecot's `mail_fsync`): "optimized"
    /// (default: every change a client can be told of), "always", "never" (a power loss may
    /// lose the log's tail; mod-sequences jump at every open instead of repeating).
    pub fsync: FsyncSetting,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncSetting {
    #[default]
    Optimized,
    Always,
    Never,
}

impl FsyncSetting {
    /// Makes this the policy of every mailbox this process opens.
    pub fn apply(self) {
        mail_store::maildir::set_fsync_policy(match self {
            FsyncSetting::Optimized => mail_index::FsyncPolicy::Optimized,
            FsyncSetting::Always => mail_index::FsyncPolicy::Always,
            FsyncSetting::Never => mail_index::FsyncPolicy::Never,
        });
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `columba=debug,info`...
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            data_dir: PathBuf::from("columba-data"),
            server: ServerConfig::default(),
            imap: ImapConfig::default(),
            pop3: Pop3Config::default(),
            lmtp: LmtpConfig::default(),
            delivery: DeliveryConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            mail: MailConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            process_model: ProcessModel::Auto,
            user: None,
            mail_user: None,
            worker_linger_secs: 30,
            max_userip_connections: 10,
            max_prelogin_connections_per_ip: 50,
        }
    }
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1143))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 1993))],
            max_line_length: 64 * 1024,
            max_message_size: 64 * 1024 * 1024,
            login_timeout_secs: 60,
            idle_timeout_secs: 30 * 60,
            auto_create: ["Drafts", "Sent", "Trash", "Junk", "Archive"]
                .map(str::to_owned)
                .to_vec(),
            special_use: imap_session::ImapSettings::default()
                .special_use
                .into_iter()
                .collect(),
            utf8_accept: false,
        }
    }
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1110))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 1995))],
            uidl_format: pop3_session::UidlFormat::DOVECOT_DEFAULT.to_owned(),
            lock_session: true,
            max_line_length: 1024,
            login_timeout_secs: 60,
            idle_timeout_secs: 10 * 60,
        }
    }
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            listen: Vec::new(),
            listen_unix: Vec::new(),
            max_line_length: 4096,
            max_recipients: 100,
            timeout_secs: 300,
            max_connections: 100,
            rcpt_check_quota: false,
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            hostname: None,
            max_message_size: 64 * 1024 * 1024,
            recipient_delimiter: "+".to_owned(),
            quota_full_tempfail: false,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        let range = auth::UidRange::default();
        AuthConfig {
            passdb: PassdbKind::PasswdFile,
            userdb: UserdbKind::PasswdFile,
            passwd_file: None,
            mechanisms: auth::sasl::Mechanism::PLAINTEXT
                .iter()
                .map(|m| m.name().to_owned())
                .collect(),
            first_valid_uid: range.first_valid_uid,
            last_valid_uid: range.last_valid_uid,
            first_valid_gid: range.first_valid_gid,
            last_valid_gid: range.last_valid_gid,
            lowercase_usernames: true,
            allow_plaintext_without_tls: false,
            failure_delay_ms: 2000,
            failure_delay_max_ms: 15_000,
            shadow: ShadowConfig::default(),
            pam: PamConfig::default(),
            checkpassword: CheckpasswordConfig::default(),
            sql: SqlConfig::default(),
            oauth2: OAuth2Config::default(),
            static_userdb: StaticConfig::default(),
        }
    }
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            file: PathBuf::from(auth::shadow::DEFAULT_PATH),
        }
    }
}

impl Default for PamConfig {
    fn default() -> Self {
        PamConfig {
            service: auth::pam::DEFAULT_SERVICE.to_owned(),
        }
    }
}

impl Default for CheckpasswordConfig {
    fn default() -> Self {
        CheckpasswordConfig {
            program: None,
            reply: None,
            timeout_secs: auth::checkpassword::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            driver: SqlDriverKind::Sqlite,
            connect: None,
            password_query: auth::sql::DEFAULT_PASSWORD_QUERY.to_owned(),
            user_query: auth::sql::DEFAULT_USER_QUERY.to_owned(),
            default_pass_scheme: None,
            max_connections: auth::sql::DEFAULT_MAX_CONNECTIONS,
            password_file: None,
        }
    }
}

impl Default for OAuth2Config {
    fn default() -> Self {
        OAuth2Config {
            introspection_url: None,
            username_field: "username".to_owned(),
            client_id: None,
            client_secret_file: None,
            scope: None,
            timeout_secs: 5,
            ca_file: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
        }
    }
}

impl Config {
    /// Reads `path`, or returns the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if config.version > CONFIG_VERSION {
            anyhow::bail!(
                "{} has configuration version {}, this Columba understands up to {}",
                path.display(),
                config.version,
                CONFIG_VERSION
            );
        }
        Ok(config)
    }

    pub fn cert_path(&self) -> PathBuf {
        self.tls
            .cert
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tls/cert.pem"))
    }

    pub fn key_path(&self) -> PathBuf {
        self.tls
            .key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tls/key.pem"))
    }

    pub fn passwd_path(&self) -> PathBuf {
        self.auth
            .passwd_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("users"))
    }

    pub fn mail_location(&self) -> String {
        self.mail.location.clone().unwrap_or_else(|| {
            if self.auth.userdb == UserdbKind::PasswdFile {
                format!("{}/mail/%u/Maildir", self.data_dir.display())
            } else {
                "%h/Maildir".to_owned()
            }
        })
    }

    /// Whether the passwd-file is in use (as passdb or userdb), so that first start creates it.
    pub fn uses_passwd_file(&self) -> bool {
        self.auth.passdb == PassdbKind::PasswdFile || self.auth.userdb == UserdbKind::PasswdFile
    }

    /// The effective configuration with every default spelled out, for `columba config`.
    pub fn effective(&self) -> Config {
        let mut c = self.clone();
        c.tls.cert = Some(self.cert_path());
        c.tls.key = Some(self.key_path());
        c.auth.passwd_file = Some(self.passwd_path());
        c.mail.location = Some(self.mail_location());
        c
    }

    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

/// Expands a mail location: `%u` the user name, `%h` the home directory, `%n`/`%d` the parts
/// of `user@domain`, `%%` a percent sign. The user name must be one path component: names
/// that could climb out (`..`, `/`) never reach here because the databases refuse them, and
/// this check makes sure of it.
pub fn expand_location(template: &str, user: &str, home: Option<&Path>) -> anyhow::Result<PathBuf> {
    auth::userdb::expand(template, user, home)
        .map_err(|e| anyhow::anyhow!("mail location {template:?} for user {user:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults_and_round_trips() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(
            c.imap.listen,
            vec!["127.0.0.1:1143".parse::<SocketAddr>().unwrap()]
        );
        let text = c.effective().to_toml().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.passwd_path(), PathBuf::from("columba-data/users"));
    }

    #[test]
    fn pop3_defaults_and_settings() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(
            c.pop3.listen,
            vec!["127.0.0.1:1110".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            c.pop3.listen_tls,
            vec!["127.0.0.1:1995".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(c.pop3.uidl_format, "%08Xu%08Xv");
        assert!(c.pop3.lock_session);
        let c: Config = toml::from_str(
            "[pop3]\nlisten = [\"0.0.0.0:110\"]\nlisten_tls = []\nuidl_format = \"%v.%u\"\nlock_session = false\n",
        )
        .unwrap();
        assert_eq!(
            c.pop3.listen,
            vec!["0.0.0.0:110".parse::<SocketAddr>().unwrap()]
        );
        assert!(c.pop3.listen_tls.is_empty());
        assert_eq!(c.pop3.uidl_format, "%v.%u");
        assert!(!c.pop3.lock_session);
    }

    #[test]
    fn client_certificate_settings() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.tls.client_ca, None);
        assert_eq!(c.tls.client_cert_username, ClientCertUsername::CommonName);
        let c: Config = toml::from_str(
            "[tls]\nclient_ca = \"/etc/columba/clients.pem\"\nclient_cert_username = \"email\"\n",
        )
        .unwrap();
        assert_eq!(
            c.tls.client_ca,
            Some(PathBuf::from("/etc/columba/clients.pem"))
        );
        assert_eq!(c.tls.client_cert_username, ClientCertUsername::Email);
        assert!(toml::from_str::<Config>("[tls]\nclient_cert_username = \"uid\"\n").is_err());
    }

    #[test]
    fn lmtp_and_delivery_settings() {
        let c: Config = toml::from_str("").unwrap();
        assert!(c.lmtp.listen.is_empty() && c.lmtp.listen_unix.is_empty());
        assert_eq!(c.delivery.recipient_delimiter, "+");
        assert!(!c.delivery.quota_full_tempfail);
        let c: Config = toml::from_str(
            "[lmtp]\nlisten = [\"127.0.0.1:24\"]\nlisten_unix = [\"/run/columba/lmtp\"]\n\
             rcpt_check_quota = true\n[delivery]\nhostname = \"mx.example.com\"\n\
             quota_full_tempfail = true\n",
        )
        .unwrap();
        assert_eq!(
            c.lmtp.listen,
            vec!["127.0.0.1:24".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(c.lmtp.listen_unix, vec![PathBuf::from("/run/columba/lmtp")]);
        assert!(c.lmtp.rcpt_check_quota && c.delivery.quota_full_tempfail);
        assert_eq!(c.delivery.hostname.as_deref(), Some("mx.example.com"));
        let text = c.effective().to_toml().unwrap();
        assert!(
            text.contains("[lmtp]") && text.contains("[delivery]"),
            "{text}"
        );
        assert!(toml::from_str::<Config>("[lmtp]\nlisten_tls = []\n").is_err());
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(toml::from_str::<Config>("[imap]\nlisten_typo = []\n").is_err());
    }

    #[test]
    fn locations_expand_and_refuse_escapes() {
        let p = expand_location("/var/mail/%u/Maildir", "bob", None).unwrap();
        assert_eq!(p, PathBuf::from("/var/mail/bob/Maildir"));
        let h = expand_location("%h/Maildir", "bob", Some(Path::new("/home/bob"))).unwrap();
        assert_eq!(h, PathBuf::from("/home/bob/Maildir"));
        for bad in ["../root", "a/b", ".hidden", ""] {
            assert!(expand_location("/m/%u", bad, None).is_err(), "{bad:?}");
        }
        assert!(expand_location("%h/M", "bob", None).is_err());
    }

    #[test]
    fn auth_defaults_keep_the_passwd_file() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.auth.passdb, PassdbKind::PasswdFile);
        assert_eq!(c.auth.userdb, UserdbKind::PasswdFile);
        assert_eq!(c.auth.mechanisms, ["PLAIN", "LOGIN"]);
        assert_eq!((c.auth.first_valid_uid, c.auth.last_valid_uid), (1000, 0));
        assert!(c.uses_passwd_file());
        assert_eq!(c.mail_location(), "columba-data/mail/%u/Maildir");
        // Everything is spelled out by `columba config`, and reads back.
        let text = c.effective().to_toml().unwrap();
        for needle in [
            "passdb = \"passwd-file\"",
            "userdb = \"passwd-file\"",
            "[auth.shadow]",
            "file = \"/etc/shadow\"",
            "[auth.pam]",
            "service = \"columba\"",
            "[auth.checkpassword]",
            "[auth.sql]",
            "driver = \"sqlite\"",
            "[auth.oauth2]",
            "username_field = \"username\"",
            "[auth.static]",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.auth.passdb, PassdbKind::PasswdFile);
    }

    #[test]
    fn system_users_configuration() {
        let c: Config = toml::from_str(
            "[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\nfirst_valid_uid = 500\n\
             mechanisms = [\"PLAIN\"]\n[auth.shadow]\nfile = \"/tmp/shadow\"\n",
        )
        .unwrap();
        assert_eq!(c.auth.passdb, PassdbKind::Shadow);
        assert_eq!(c.auth.userdb, UserdbKind::Passwd);
        assert_eq!(c.auth.first_valid_uid, 500);
        assert_eq!(c.auth.shadow.file, PathBuf::from("/tmp/shadow"));
        assert!(!c.uses_passwd_file());
        assert_eq!(c.mail_location(), "%h/Maildir");
        let c: Config = toml::from_str(
            "[auth]\npassdb = \"checkpassword\"\nuserdb = \"static\"\n\
             [auth.checkpassword]\nprogram = \"/usr/bin/checkpassword\"\n\
             [auth.static]\nuid = \"vmail\"\ngid = 5000\nhome = \"/var/vmail/%d/%n\"\n",
        )
        .unwrap();
        assert_eq!(c.auth.static_userdb.uid, Some(IdSpec::Name("vmail".into())));
        assert_eq!(c.auth.static_userdb.gid, Some(IdSpec::Number(5000)));
        let text = c.effective().to_toml().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.auth.static_userdb.gid, Some(IdSpec::Number(5000)));
        let c: Config = toml::from_str(
            "[auth]\npassdb = \"sql\"\nuserdb = \"prefetch\"\n[auth.sql]\n\
             driver = \"postgresql\"\nconnect = \"host=127.0.0.1 dbname=mail\"\n\
             password_query = \"SELECT password FROM u WHERE name = '%u'\"\n",
        )
        .unwrap();
        assert_eq!(c.auth.passdb, PassdbKind::Sql);
        assert_eq!(c.auth.sql.driver, SqlDriverKind::Postgresql);
        assert_eq!(c.auth.sql.user_query, auth::sql::DEFAULT_USER_QUERY);
        assert_eq!(c.mail_location(), "%h/Maildir");
        for bad in [
            "[auth]\npassdb = \"ldap\"\n",
            "[auth.sql]\ndriver = \"mysql\"\n",
            "[auth]\nuserdb = \"shadow\"\n",
            "[auth.pam]\nservise = \"x\"\n",
        ] {
            assert!(toml::from_str::<Config>(bad).is_err(), "{bad}");
        }
    }
}
