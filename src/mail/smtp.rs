//! Delivery: a [`Letter`] becomes a lettre `Message` (typed headers) and goes out through the SMTP relay (STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, timeout, HELO name) or the local sendmail; failures are classified for the outbox.

use std::time::{Duration, SystemTime};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{
    Address, AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use crate::config::model::{MailSettings, SmtpTls};
use crate::mail::Letter;
use crate::mail::outbox::Failure;

/// How letters leave this machine. Each send is bounded as a whole by the
/// duration beside the transport (lettre's own timeout covers only the
/// connect, so a relay that stops answering mid-session would hang it).
pub enum Route {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>, Duration),
    Sendmail(AsyncSendmailTransport<Tokio1Executor>, Duration),
    /// Nothing configured and no sendmail found: letters wait in the outbox.
    None,
}

/// How long the local sendmail may take for one message.
pub const SENDMAIL_TIMEOUT: Duration = Duration::from_secs(60);

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
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(smtp.timeout))
        .hello_name(ClientId::Domain(
            smtp.helo_name
                .clone()
                .unwrap_or_else(|| hostname.to_string()),
        ));
    if smtp.tls != SmtpTls::None {
        let mut tls = TlsParameters::builder(smtp.host.clone());
        if let Some(ca_file) = &smtp.ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|e| format!("smtp ca_file {}: {e}", ca_file.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("smtp ca_file {}: {e}", ca_file.display()))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| format!("smtp tls setup for {}: {e}", smtp.host))?;
        builder = builder.tls(match smtp.tls {
            SmtpTls::StartTls => Tls::Required(tls),
            _ => Tls::Wrapper(tls),
        });
    }
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder
            .credentials(Credentials::new(user.clone(), password.clone()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(Route::Smtp(Box::new(builder.build()), smtp.timeout))
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

/// Send one message: `Ok` means the relay answered 250 (or sendmail exited 0).
pub async fn send(route: &Route, message: &Message) -> Result<(), Failure> {
    match route {
        Route::Smtp(transport, limit) => {
            let sent = tokio::time::timeout(*limit, transport.send(message.clone())).await;
            match sent {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => {
                    let text = error_text(&e);
                    Err(if e.is_permanent() {
                        Failure::Permanent(text)
                    } else if e.is_transient() {
                        Failure::Transient(text)
                    } else {
                        Failure::Unreachable(text)
                    })
                }
                Err(_) => Err(Failure::Unreachable(format!(
                    "no answer within the smtp timeout ({}s)",
                    limit.as_secs_f64()
                ))),
            }
        }
        // sendmail's exit status cannot say "permanent" reliably: retry until max_age.
        Route::Sendmail(transport, limit) => {
            match tokio::time::timeout(*limit, transport.send(message.clone())).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(Failure::Transient(format!("sendmail: {}", error_text(&e)))),
                Err(_) => Err(Failure::Transient(format!(
                    "sendmail did not finish within {}s",
                    limit.as_secs()
                ))),
            }
        }
        Route::None => Err(Failure::Unreachable(
            "no smtp relay configured and no sendmail found".to_string(),
        )),
    }
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
