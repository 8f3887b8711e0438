//! Delivery: a [`Letter`] becomes a lettre `Message` (typed headers) and goes out through the SMTP relay (STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, timeout, HELO name) or the local sendmail; failures are classified for the outbox.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSendmailTransport, AsyncTransport, Message, Tokio1Executor};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::model::{MailSettings, SmtpSettings, SmtpTls};
use crate::mail::Letter;
use crate::mail::outbox::Failure;

/// How letters leave this machine.
pub enum Route {
    Smtp(Box<Relay>),
    Sendmail(AsyncSendmailTransport<Tokio1Executor>, Duration),
    /// Nothing configured and no sendmail found: letters wait in the outbox.
    None,
}

/// How long the local sendmail may take for one message.
pub const SENDMAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// An SMTP relay: keepmon opens the TCP connection itself (TCP_NODELAY:
/// lettre writes a message's final `.` line separately, and with Nagle each
/// message would wait for the server's delayed ACK, ~40 ms) and lets lettre
/// speak SMTP over it: EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA.
pub struct Relay {
    host: String,
    port: u16,
    hello: ClientId,
    /// STARTTLS parameters (lettre upgrades the connection).
    starttls: Option<TlsParameters>,
    /// Implicit TLS: the handshake is done here, before SMTP starts.
    implicit: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    credentials: Option<Credentials>,
    /// Bounds opening a session, and each message's transaction.
    timeout: Duration,
}

/// An open SMTP session, reused for the letters of one delivery round.
pub struct Session(AsyncSmtpConnection);

/// The delivery route for these settings. `hostname` qualifies bare local
/// recipients (`root` → `root@HOST`, as sendmail does) and is the default
/// HELO name.
pub fn route(settings: &MailSettings, hostname: &str) -> Result<Route, String> {
    let Some(smtp) = &settings.smtp else {
        return Ok(match &settings.sendmail {
            Some(path) => Route::Sendmail(
                AsyncSendmailTransport::<Tokio1Executor>::new_with_command(path.as_os_str()),
                SENDMAIL_TIMEOUT,
            ),
            None => Route::None,
        });
    };
    let ca_pem = match &smtp.ca_file {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("smtp ca_file {}: {e}", path.display()))?)
        }
        None => None,
    };
    let starttls = match smtp.tls {
        SmtpTls::StartTls => {
            let mut tls = TlsParameters::builder(smtp.host.clone());
            if let Some(pem) = &ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("smtp ca_file: {e}"))?;
                tls = tls.add_root_certificate(cert);
            }
            Some(
                tls.build_rustls()
                    .map_err(|e| format!("smtp tls setup for {}: {e}", smtp.host))?,
            )
        }
        _ => None,
    };
    let implicit = match smtp.tls {
        SmtpTls::Implicit => Some(implicit_tls(smtp, ca_pem.as_deref())?),
        _ => None,
    };
    Ok(Route::Smtp(Box::new(Relay {
        host: smtp.host.clone(),
        port: smtp.port,
        hello: ClientId::Domain(
            smtp.helo_name
                .clone()
                .unwrap_or_else(|| hostname.to_string()),
        ),
        starttls,
        implicit,
        credentials: match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            _ => None,
        },
        timeout: smtp.timeout,
    })))
}

impl Relay {
    /// Connect, greet, upgrade to TLS, authenticate.
    pub async fn open(&self) -> Result<Session, Failure> {
        match tokio::time::timeout(self.timeout, self.open_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Unreachable(format!(
                "{}:{}: no answer within the smtp timeout ({}s)",
                self.host,
                self.port,
                self.timeout.as_secs_f64()
            ))),
        }
    }

    async fn open_unbounded(&self) -> Result<Session, Failure> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Failure::Unreachable(format!("{}:{}: {e}", self.host, self.port)))?;
        tcp.set_nodelay(true).ok();
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit {
            Some((connector, name)) => Box::new(ImplicitTls(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| Failure::Unreachable(format!("tls: {e}")))?,
            )),
            None => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| classify(&e))?;
        if let Some(tls) = &self.starttls {
            if !conn.can_starttls() {
                return Err(Failure::Unreachable(format!(
                    "{}:{} does not offer STARTTLS (tls = \"starttls\")",
                    self.host, self.port
                )));
            }
            conn.starttls(tls.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(Session(conn))
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Session {
    /// One message: `Ok` means the relay answered 250. After an error the
    /// session is broken; open a new one.
    pub async fn send(&mut self, message: &Message, limit: Duration) -> Result<(), Failure> {
        let sent =
            tokio::time::timeout(limit, self.0.send(message.envelope(), &message.formatted()))
                .await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Failure::Unreachable(format!(
                "no answer within the smtp timeout ({}s)",
                limit.as_secs_f64()
            ))),
        }
    }

    pub fn is_broken(&self) -> bool {
        self.0.has_broken()
    }

    /// QUIT, briefly; the connection closes either way.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.0.quit()).await;
    }
}

/// Send through the local sendmail (the SMTP relay goes through [`Relay`]).
pub async fn send_sendmail(
    transport: &AsyncSendmailTransport<Tokio1Executor>,
    limit: Duration,
    message: &Message,
) -> Result<(), Failure> {
    // sendmail's exit status cannot say "permanent" reliably: retry until max_age.
    match tokio::time::timeout(limit, transport.send(message.clone())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failure::Transient(format!("sendmail: {}", error_text(&e)))),
        Err(_) => Err(Failure::Transient(format!(
            "sendmail did not finish within {}s",
            limit.as_secs()
        ))),
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> Failure {
    let text = error_text(e);
    if e.is_permanent() {
        Failure::Permanent(text)
    } else if e.is_transient() {
        Failure::Transient(text)
    } else {
        Failure::Unreachable(text)
    }
}

/// rustls for implicit TLS: the system's CAs plus `ca_file`, ring provider.
fn implicit_tls(
    smtp: &SmtpSettings,
    ca_pem: Option<&[u8]>,
) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("smtp ca_file: {e}"))?;
            roots.add(cert).map_err(|e| format!("smtp ca_file: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("smtp tls setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(smtp.host.clone())
        .map_err(|e| format!("smtp host \"{}\": {e}", smtp.host))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

/// A TLS stream lettre can speak SMTP over.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// Words for logs and `check-config`: `smtp mail.example.com:587 starttls`.
pub fn describe(settings: &MailSettings) -> String {
    match (&settings.smtp, &settings.sendmail) {
        (Some(smtp), _) => {
            let tls = match smtp.tls {
                SmtpTls::None => "plain",
                SmtpTls::StartTls => "starttls",
                SmtpTls::Implicit => "implicit tls",
            };
            let auth = if smtp.username.is_some() {
                ", auth"
            } else {
                ""
            };
            format!("smtp {}:{} ({tls}{auth})", smtp.host, smtp.port)
        }
        (None, Some(path)) => format!(
            "local sendmail {} (no smtp relay configured)",
            path.display()
        ),
        (None, None) => {
            "none: no smtp relay configured and no sendmail found (mail waits in the outbox)"
                .to_string()
        }
    }
}

/// The RFC 5322 message for a letter. Every header goes through lettre's
/// typed builders: text can never add a header line. `message_id` is the
/// id-part (without `<>`); the same outbox entry always carries the same one.
pub fn message(
    letter: &Letter,
    message_id: &str,
    date: SystemTime,
    hostname: &str,
) -> Result<Message, Failure> {
    let from = mailbox(&letter.from, hostname)?;
    let mut to = Mailboxes::new();
    for address in &letter.to {
        to.push(mailbox(address, hostname)?);
    }
    let mut builder = Message::builder()
        .from(from)
        .subject(letter.subject.clone())
        .date(date)
        .message_id(Some(format!("<{message_id}@{hostname}>")))
        .user_agent(format!("keepmon {}", env!("CARGO_PKG_VERSION")));
    for mailbox in to {
        builder = builder.to(mailbox);
    }
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(letter.body.clone())
        .map_err(|e| Failure::Permanent(format!("cannot build the message: {e}")))
}

/// An address from the config: `user@domain`, `Name <user@domain>`, or a
/// bare local user (mon configs mail `root`), qualified with this host.
fn mailbox(address: &str, hostname: &str) -> Result<Mailbox, Failure> {
    let bad = |e: &dyn std::fmt::Display| {
        Failure::Permanent(format!("bad mail address \"{address}\": {e}"))
    };
    if address.contains('@') || address.contains('<') {
        return address.parse::<Mailbox>().map_err(|e| bad(&e));
    }
    Address::new(address, hostname)
        .map(|a| Mailbox::new(None, a))
        .map_err(|e| bad(&e))
}

/// An error with its causes (lettre's Display leaves out the interesting part).
fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(subject: &str) -> Letter {
        Letter {
            from: "keepmon@lb1.example.com".into(),
            to: vec!["ops@example.com".into(), "root".into()],
            subject: subject.into(),
            body: "\nGroup : web\n.\nline\n".into(),
        }
    }

    fn headers(message: &Message) -> Vec<String> {
        let text = String::from_utf8(message.formatted()).unwrap();
        let (head, _) = text.split_once("\r\n\r\n").unwrap();
        let mut names = Vec::new();
        for line in head.split("\r\n") {
            if !line.starts_with([' ', '\t']) {
                names.push(line.split(':').next().unwrap().to_string());
            }
        }
        names
    }

    #[test]
    fn headers_are_typed_and_recipients_qualified() {
        let m = message(
            &letter("ALERT web/http: down"),
            "abc",
            SystemTime::UNIX_EPOCH,
            "lb1",
        )
        .unwrap();
        assert_eq!(
            m.envelope().to(),
            [
                "ops@example.com".parse::<Address>().unwrap(),
                "root@lb1".parse().unwrap()
            ]
        );
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("Message-ID: <abc@lb1>\r\n"), "{text}");
        assert!(text.contains("Subject: ALERT web/http: down\r\n"), "{text}");
        let mut names = headers(&m);
        names.sort();
        assert_eq!(
            names,
            [
                "Content-Transfer-Encoding",
                "Content-Type",
                "Date",
                "From",
                "Message-ID",
                "Subject",
                "To",
                "User-Agent"
            ]
        );
    }

    /// lettre itself, without keepmon's subject cleaning, encodes CR/LF.
    #[test]
    fn raw_crlf_in_a_subject_cannot_add_a_header() {
        let m = message(
            &letter("down\r\nBcc: evil@example.net\r\nX-Injected: 1"),
            "abc",
            SystemTime::UNIX_EPOCH,
            "lb1",
        )
        .unwrap();
        let names = headers(&m);
        assert!(
            !names.iter().any(|n| n == "Bcc" || n == "X-Injected"),
            "{names:?}"
        );
        assert_eq!(m.envelope().to().len(), 2);
    }

    #[test]
    fn bad_addresses_are_permanent() {
        let mut l = letter("x");
        l.to = vec!["a@b@c".into()];
        assert!(matches!(
            message(&l, "id", SystemTime::UNIX_EPOCH, "lb1"),
            Err(Failure::Permanent(_))
        ));
    }

    #[test]
    fn describe_names_the_route() {
        let mut s = MailSettings::default();
        assert!(describe(&s).starts_with("none"));
        s.sendmail = Some("/usr/sbin/sendmail".into());
        assert_eq!(
            describe(&s),
            "local sendmail /usr/sbin/sendmail (no smtp relay configured)"
        );
    }
}
