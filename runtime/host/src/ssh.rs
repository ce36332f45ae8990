//! The `ssh` capability, host side: one command on one remote host over SSH (russh, a
//! maintained pure-Rust client), for the remote runners.
//!
//! [`run_remote`] connects (directly, or through a bastion host's `direct-tcpip` channel),
//! checks the server's host key against a known-hosts file (OpenSSH format; an unknown host or
//! a changed key is refused, never learned), authenticates with a private key or a password,
//! optionally uploads a script (a new directory by `mkdir -m 700`, `cat >` under `umask 077`,
//! on its own channel), runs the command line on a session channel, reads stdout and stderr
//! into bounded buffers, and ends at the command's exit, its deadline or a cancel (the channel
//! is sent SIGKILL, then closed and the connection dropped). Every step after the connection
//! runs under that deadline and cancel too.
//!
//! Known-hosts limits (russh's lookup): hashed and plain host names, `[host]:port` and
//! `@revoked` lines are honoured; `@cert-authority` lines are not (host certificates are
//! refused); a host listed with two keys of the same algorithm is refused as a changed key
//! unless the first one matches.

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, check_known_hosts_path};
use russh::{ChannelMsg, Disconnect, Sig};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A host and port to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// A DNS name or an IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.port == 22 {
            write!(f, "{}", self.host)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How to log in.
#[derive(Clone)]
pub enum SshAuth {
    /// Public-key authentication with this key.
    Key(Arc<PrivateKey>),
    /// Password authentication.
    Password(String),
}

impl std::fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SshAuth::Key(_) => "Key(********)",
            SshAuth::Password(_) => "Password(********)",
        })
    }
}

/// One remote command to run.
#[derive(Debug, Clone)]
pub struct SshSpec {
    /// Where it runs.
    pub target: SshTarget,
    /// A host to go through (same user and credentials), when given.
    pub bastion: Option<SshTarget>,
    /// The remote user.
    pub user: String,
    /// The credentials.
    pub auth: SshAuth,
    /// The known-hosts file every host key is checked against.
    pub known_hosts: PathBuf,
    /// A file to write on the remote host first: (directory, created with mode 0700; file
    /// name, written with mode 0700; content), e.g. a script.
    pub upload: Option<(String, String, Vec<u8>)>,
    /// The command line, as the remote user's shell reads it.
    pub command: String,
    /// Bytes sent to the command's stdin, then end of file.
    pub stdin: Option<Vec<u8>>,
    /// Bound on connecting and logging in.
    pub connect_timeout: Duration,
    /// Bound on the whole run, from the start.
    pub timeout: Duration,
    /// Bytes kept of stdout, and of stderr.
    pub max_output: u64,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteExit {
    /// It exited with this code.
    Code(i32),
    /// It was ended by this signal (its SSH name, e.g. `KILL`).
    Signal(String),
    /// Squall ended it at its deadline.
    TimedOut,
    /// Squall ended it because the execution was canceled.
    Canceled,
}

/// What a remote command did.
#[derive(Debug, Clone)]
pub struct RemoteOutcome {
    /// How it ended.
    pub exit: RemoteExit,
    /// Kept stdout (invalid UTF-8 replaced).
    pub stdout: String,
    /// Kept stderr.
    pub stderr: String,
    /// Bytes of stdout received in all.
    pub stdout_bytes: u64,
    /// Bytes of stderr received in all.
    pub stderr_bytes: u64,
    /// From the start of the connection to the end.
    pub duration: Duration,
}

/// Why a remote command did not run.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host could not be reached or the SSH handshake failed.
    #[error("cannot connect to {target}: {message}")]
    Connect {
        /// The host.
        target: String,
        /// Why.
        message: String,
    },
    /// The host's key is not in the known-hosts file, or differs from the one there.
    #[error("host key of {target} refused: {message}")]
    HostKey {
        /// The host.
        target: String,
        /// Why.
        message: String,
    },
    /// The server refused the credentials.
    #[error("authentication as {user:?} on {target} failed ({method})")]
    Auth {
        /// The host.
        target: String,
        /// The user.
        user: String,
        /// `publickey` or `password`.
        method: &'static str,
    },
    /// The session or the upload failed.
    #[error("on {target}: {message}")]
    Session {
        /// The host.
        target: String,
        /// Why.
        message: String,
    },
}

/// Checks host keys against the known-hosts file; remembers why it refused one.
struct Checker {
    target: SshTarget,
    known_hosts: PathBuf,
    refusal: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let refuse = |why: String| {
            *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            Ok(false)
        };
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return refuse(
                "host certificates are not supported: list the host's key in the known-hosts file"
                    .into(),
            );
        };
        if revoked(key, &self.known_hosts) {
            return refuse(format!(
                "its key is marked @revoked in {}",
                self.known_hosts.display()
            ));
        }
        match check_known_hosts_path(&self.target.host, self.target.port, key, &self.known_hosts) {
            Ok(true) => Ok(true),
            Ok(false) => refuse(format!(
                "no {} key for it in {} (add the host's key there, e.g. with ssh-keyscan)",
                key.algorithm(),
                self.known_hosts.display()
            )),
            Err(russh::keys::Error::KeyChanged { line }) => refuse(format!(
                "its key differs from the one in {} line {line}: refused (a changed host key may \
                 mean someone is intercepting the connection)",
                self.known_hosts.display()
            )),
            Err(e) => refuse(format!("cannot read {}: {e}", self.known_hosts.display())),
        }
    }
}

/// Whether the known-hosts file marks `key` `@revoked` (OpenSSH's marker, which russh's
/// lookup does not read: it would otherwise skip the line and accept the key from another).
fn revoked(key: &russh::keys::PublicKey, known_hosts: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(known_hosts) else {
        return false;
    };
    let Ok(ours) = key.to_openssh() else {
        return false;
    };
    let ours: Vec<&str> = ours.split_whitespace().take(2).collect();
    text.lines().any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some("@revoked") && {
            let key: Vec<&str> = fields.skip(1).take(2).collect();
            key == ours
        }
    })
}

fn config() -> Arc<client::Config> {
    Arc::new(client::Config {
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    })
}

/// Connects to `target` over `stream` (or TCP when `None`) and logs in.
async fn login<S>(
    spec: &SshSpec,
    target: &SshTarget,
    stream: Option<S>,
) -> Result<Handle<Checker>, SshError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let refusal = Arc::new(Mutex::new(None));
    let checker = Checker {
        target: target.clone(),
        known_hosts: spec.known_hosts.clone(),
        refusal: refusal.clone(),
    };
    let name = target.to_string();
    let connected = match stream {
        Some(s) => client::connect_stream(config(), s, checker).await,
        None => client::connect(config(), (target.host.as_str(), target.port), checker).await,
    };
    let mut handle = match connected {
        Ok(h) => h,
        Err(e) => {
            if let Some(message) = refusal.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(SshError::HostKey {
                    target: name,
                    message,
                });
            }
            return Err(SshError::Connect {
                target: name,
                message: e.to_string(),
            });
        }
    };
    let session = |e: russh::Error| SshError::Session {
        target: name.clone(),
        message: e.to_string(),
    };
    let (ok, method) = match &spec.auth {
        SshAuth::Key(key) => {
            let hash = handle.best_supported_rsa_hash().await.map_err(session)?;
            let r = handle
                .authenticate_publickey(
                    spec.user.clone(),
                    PrivateKeyWithHashAlg::new(key.clone(), hash.flatten()),
                )
                .await
                .map_err(session)?;
            (r.success(), "publickey")
        }
        SshAuth::Password(p) => {
            let r = handle
                .authenticate_password(spec.user.clone(), p.clone())
                .await
                .map_err(session)?;
            (r.success(), "password")
        }
    };
    if !ok {
        return Err(SshError::Auth {
            target: name,
            user: spec.user.clone(),
            method,
        });
    }
    Ok(handle)
}

/// Connects (through the bastion when given) and logs in to the target.
async fn open(spec: &SshSpec) -> Result<(Handle<Checker>, Option<Handle<Checker>>), SshError> {
    let Some(bastion) = &spec.bastion else {
        let h = login::<tokio::net::TcpStream>(spec, &spec.target, None).await?;
        return Ok((h, None));
    };
    let hop = login::<tokio::net::TcpStream>(spec, bastion, None).await?;
    let channel = hop
        .channel_open_direct_tcpip(
            spec.target.host.clone(),
            u32::from(spec.target.port),
            "127.0.0.1",
            0,
        )
        .await
        .map_err(|e| SshError::Connect {
            target: spec.target.to_string(),
            message: format!("through bastion {bastion}: {e}"),
        })?;
    let h = login(spec, &spec.target, Some(channel.into_stream())).await?;
    Ok((h, Some(hop)))
}

/// Runs `spec`; see the module docs.
///
/// # Errors
/// [`SshError`] when the command could not be started (connection, host key, login, upload);
/// every way a started command ends is a [`RemoteExit`].
pub async fn run_remote(
    spec: &SshSpec,
    cancel: &CancellationToken,
) -> Result<RemoteOutcome, SshError> {
    let started = Instant::now();
    if spec.timeout.is_zero() {
        // No time left (hosts run one after another under one deadline): nothing connects.
        let none = Bounded::default;
        return Ok(outcome(RemoteExit::TimedOut, none(), none(), started));
    }
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let name = spec.target.to_string();
    let connect = tokio::time::timeout(spec.connect_timeout.min(spec.timeout), open(spec));
    let (handle, hop) = tokio::select! {
        r = connect => r.map_err(|_| SshError::Connect {
            target: name.clone(),
            message: format!("no answer within {} s", spec.connect_timeout.min(spec.timeout).as_secs_f64()),
        })??,
        () = cancel.cancelled() => {
            return Ok(outcome(RemoteExit::Canceled, Bounded::default(), Bounded::default(), started));
        }
    };
    // Everything after the login runs under the same deadline and cancel as the command: a
    // host that stalls the upload or the start (a full window, a channel never confirmed)
    // ends as a timeout, not a hang.
    let started_channel = tokio::select! {
        r = start(spec, &handle) => r,
        () = tokio::time::sleep_until(deadline) => Ok(None),
        () = cancel.cancelled() => Err(None),
    };
    let mut channel = match started_channel {
        Ok(Some(channel)) => channel,
        stopped => {
            close(handle, hop).await;
            return match stopped {
                Err(Some(e)) => Err(e),
                Ok(None) => Ok(outcome(
                    RemoteExit::TimedOut,
                    Bounded::default(),
                    Bounded::default(),
                    started,
                )),
                _ => Ok(outcome(
                    RemoteExit::Canceled,
                    Bounded::default(),
                    Bounded::default(),
                    started,
                )),
            };
        }
    };
    let (mut out, mut err) = (Bounded::new(spec.max_output), Bounded::new(spec.max_output));
    let mut exit = None;
    let end = loop {
        tokio::select! {
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => out.push(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => err.push(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    exit = Some(RemoteExit::Code(i32::try_from(exit_status).unwrap_or(i32::MAX)));
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    exit = Some(RemoteExit::Signal(format!("{signal_name:?}")));
                }
                Some(_) => {}
                None => break exit.unwrap_or(RemoteExit::Signal("connection closed".into())),
            },
            () = tokio::time::sleep_until(deadline) => break RemoteExit::TimedOut,
            () = cancel.cancelled() => break RemoteExit::Canceled,
        }
    };
    if matches!(end, RemoteExit::TimedOut | RemoteExit::Canceled) {
        // Best effort: OpenSSH delivers the signal to the command; the connection goes anyway.
        let _ = channel.signal(Sig::KILL).await;
        let _ = channel.close().await;
    }
    close(handle, hop).await;
    Ok(outcome(end, out, err, started))
}

/// Uploads the script (when there is one) and starts the command; the session channel, with
/// stdin sent and closed. `Err(Some(_))` when the host refused a step.
async fn start(
    spec: &SshSpec,
    handle: &Handle<Checker>,
) -> Result<Option<russh::Channel<client::Msg>>, Option<SshError>> {
    let session_err = |e: russh::Error| {
        Some(SshError::Session {
            target: spec.target.to_string(),
            message: e.to_string(),
        })
    };
    if let Some((dir, file, content)) = &spec.upload {
        let q = squall_core::command::shell_quote;
        let path = format!("{}/{file}", dir.trim_end_matches('/'));
        let mut channel = handle.channel_open_session().await.map_err(session_err)?;
        // `mkdir` without `-p`: a directory that is already there (planted by another user of
        // the remote host) fails the upload instead of receiving the script.
        channel
            .exec(
                true,
                format!(
                    "umask 077 && mkdir -m 700 {} && cat > {} && chmod 700 {}",
                    q(dir),
                    q(&path),
                    q(&path)
                ),
            )
            .await
            .map_err(session_err)?;
        channel
            .data_bytes(content.clone())
            .await
            .map_err(session_err)?;
        channel.eof().await.map_err(session_err)?;
        let mut code = None;
        let mut stderr = Vec::new();
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
                ChannelMsg::ExtendedData { data, ext: 1 } if stderr.len() < 1024 => {
                    stderr.extend_from_slice(&data);
                }
                _ => {}
            }
        }
        if code != Some(0) {
            let why = String::from_utf8_lossy(&stderr[..stderr.len().min(1024)]);
            return Err(Some(SshError::Session {
                target: spec.target.to_string(),
                message: format!("cannot write {path} (exit status {code:?}): {}", why.trim()),
            }));
        }
    }
    let channel = handle.channel_open_session().await.map_err(session_err)?;
    channel
        .exec(true, spec.command.as_bytes())
        .await
        .map_err(session_err)?;
    if let Some(input) = &spec.stdin {
        channel
            .data_bytes(input.clone())
            .await
            .map_err(session_err)?;
    }
    channel.eof().await.map_err(session_err)?;
    Ok(Some(channel))
}

/// Says goodbye to the target and the bastion, a bounded wait each: a host that does not
/// answer is simply dropped.
async fn close(handle: Handle<Checker>, hop: Option<Handle<Checker>>) {
    let bye = Duration::from_secs(2);
    let _ = tokio::time::timeout(bye, handle.disconnect(Disconnect::ByApplication, "", "en")).await;
    if let Some(hop) = hop {
        let _ =
            tokio::time::timeout(bye, hop.disconnect(Disconnect::ByApplication, "", "en")).await;
    }
}

fn outcome(exit: RemoteExit, out: Bounded, err: Bounded, started: Instant) -> RemoteOutcome {
    RemoteOutcome {
        exit,
        stdout: String::from_utf8_lossy(&out.kept).into_owned(),
        stderr: String::from_utf8_lossy(&err.kept).into_owned(),
        stdout_bytes: out.total,
        stderr_bytes: err.total,
        duration: started.elapsed(),
    }
}

/// The first `max` bytes of a stream, and how many came in all.
#[derive(Default)]
struct Bounded {
    kept: Vec<u8>,
    total: u64,
    max: usize,
}

impl Bounded {
    fn new(max: u64) -> Bounded {
        Bounded {
            kept: Vec::new(),
            total: 0,
            max: usize::try_from(max).unwrap_or(usize::MAX),
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.max.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Parses a private key in OpenSSH or PEM format, decrypting it with `passphrase` when given.
///
/// # Errors
/// A message saying why (never the key's text).
pub fn parse_private_key(text: &str, passphrase: Option<&str>) -> Result<Arc<PrivateKey>, String> {
    russh::keys::decode_secret_key(text, passphrase)
        .map(Arc::new)
        .map_err(|e| format!("the private key does not parse: {e}"))
}
