//! Mail an action's component sends through its `mail` import (`wit/squall.wit`), as
//! StackStorm's `core.sendmail` hands it to the machine's `sendmail`: here over SMTP to the
//! operator's relay (`[smtp]`, see [`squall_core::config::SmtpSettings`]) with [lettre], and
//! only when the action's pack is granted that relay (`[packs.<pack>] smtp_allow`, host
//! patterns as `http_allow`). A sender without `@` gets `@<this machine's host name>`, as
//! st2's `send_mail` script does (the kernel's name; st2 asks `hostname -f`). One execution
//! sends at most [`MAX_MESSAGES`], each to at most [`MAX_RECIPIENTS`] and of at most
//! [`MAX_MESSAGE_BYTES`]. A refusal is a [`GateError::Denied`]: the host records it among the
//! execution's denials.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use squall_core::Execution;
use squall_core::config::{PackGrants, SmtpSettings, SmtpTls};
use squall_host::GateError;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Messages one execution may send; past it each send is refused.
pub(crate) const MAX_MESSAGES: usize = 100;

/// Recipients of one message.
pub(crate) const MAX_RECIPIENTS: usize = 100;

/// Bytes of one message's subject and body together (10 MiB).
pub(crate) const MAX_MESSAGE_BYTES: usize = 10 << 20;

/// The `mail` import of one `wasm` execution.
pub(crate) struct ActionMail {
    execution: String,
    pack: String,
    grants: PackGrants,
    smtp: SmtpSettings,
    sent: AtomicUsize,
}

impl ActionMail {
    /// The gate of `execution` under its pack's grants and the operator's relay.
    pub(crate) fn new(execution: &Execution, grants: PackGrants, smtp: SmtpSettings) -> ActionMail {
        ActionMail {
            execution: execution.id.to_string(),
            pack: execution.action.pack.clone(),
            grants,
            smtp,
            sent: AtomicUsize::new(0),
        }
    }

    /// The relay as `(host, port)`, once granted to the pack.
    fn relay(&self) -> Result<(String, u16), GateError> {
        let pack = &self.pack;
        let server = self.smtp.server.as_deref().ok_or_else(|| {
            "no SMTP relay is configured: set [smtp] server in squall.toml".to_string()
        })?;
        let (host, port) = server
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("[smtp] server {server:?} is not host:port"))?;
        if !self.grants.smtp_allow.iter().any(|p| p.matches(host, port)) {
            return Err(GateError::Denied(format!(
                "mail through {server} is not granted to pack {pack:?}: add it to \
                 [packs.{pack}] smtp_allow in squall.toml (e.g. smtp_allow = [{server:?}])"
            )));
        }
        Ok((host.to_string(), port))
    }

    fn transport(
        &self,
        host: &str,
        port: u16,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let builder = match self.smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| format!("SMTP relay {host}: {e}"))?;
        let mut builder = builder.port(port).timeout(Some(self.smtp.timeout));
        if let Some(user) = &self.smtp.username {
            let password = match &self.smtp.password_file {
                None => String::new(),
                Some(file) => std::fs::read_to_string(file)
                    .map_err(|e| format!("[smtp] password_file {}: {e}", file.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(builder.build())
    }
}

/// `name` as an address: itself when it has an `@`, else `name@<host name>`.
fn sender_address(name: &str) -> String {
    if name.contains('@') {
        return name.to_string();
    }
    // The kernel's host name (`hostname`; st2's script asks `hostname -f`).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{name}@{host}")
}

#[async_trait::async_trait]
impl squall_host::MailGate for ActionMail {
    async fn send(&self, message: squall_host::MailMessage) -> Result<(), GateError> {
        let (host, port) = self.relay()?;
        if self.sent.fetch_add(1, Ordering::SeqCst) >= MAX_MESSAGES {
            return Err(GateError::Failed(format!(
                "the execution already sent {MAX_MESSAGES} messages, the most one may"
            )));
        }
        let size = message.subject.len() + message.body.len();
        if size > MAX_MESSAGE_BYTES {
            return Err(GateError::Failed(format!(
                "the message is {size} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        if message
            .recipients
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .count()
            > MAX_RECIPIENTS
        {
            return Err(GateError::Failed(format!(
                "more than {MAX_RECIPIENTS} recipients"
            )));
        }
        let content_type = match message.content_type.as_str() {
            "text/html" => ContentType::TEXT_HTML,
            "text/plain" => ContentType::TEXT_PLAIN,
            other => {
                return Err(GateError::Failed(format!(
                    "content type {other:?}: only \"text/plain\" and \"text/html\""
                )));
            }
        };
        let sender = sender_address(&message.sender);
        let mut builder = Message::builder()
            .from(
                sender
                    .parse()
                    .map_err(|e| format!("sender {sender:?}: {e}"))?,
            )
            .subject(message.subject)
            .header(content_type);
        let mut any = false;
        for to in message
            .recipients
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            builder = builder.to(to.parse().map_err(|e| format!("recipient {to:?}: {e}"))?);
            any = true;
        }
        if !any {
            return Err("no recipient".into());
        }
        let email = builder
            .body(message.body)
            .map_err(|e| format!("the message cannot be built: {e}"))?;
        let transport = self.transport(&host, port)?;
        let response = tokio::time::timeout(self.smtp.timeout, transport.send(email))
            .await
            .map_err(|_| {
                format!(
                    "the SMTP relay {host}:{port} did not accept the message within {} s ([smtp] timeout)",
                    self.smtp.timeout.as_secs()
                )
            })?
            .map_err(|e| format!("the SMTP relay {host}:{port} refused the message: {e}"))?;
        tracing::info!(
            execution.id = %self.execution,
            smtp.relay = %format!("{host}:{port}"),
            smtp.code = %response.code(),
            "mail sent"
        );
        Ok(())
    }
}
