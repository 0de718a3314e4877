//! SMTP delivery through lettre to a real (minimal) SMTP server on a random port, and the
//! console mailer's log line.

use std::sync::{Arc, Mutex};

use auth_server::mail::{ConsoleMailer, Email, Mailer, SmtpMailer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Accepts SMTP sessions and keeps each message's DATA.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(std::mem::take(body));
                            data = None;
                            write.write_all(b"250 OK queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok();
                            break;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_through_lettre() {
    let (port, received) = smtp_sink().await;
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "Auth <auth@example.com>",
    )
    .unwrap();
    mailer
        .send(&Email {
            to: "ann@example.com".into(),
            subject: "Reset your password".into(),
            body: "https://app.example.com/reset-password?token=abc".into(),
        })
        .await
        .unwrap();
    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.contains("To: ann@example.com"), "{m}");
    assert!(m.contains("From: Auth <auth@example.com>"), "{m}");
    assert!(m.contains("Subject: Reset your password"), "{m}");
    assert!(m.contains("reset-password?token=abc"), "{m}");
}

#[test]
fn bad_smtp_settings_name_the_variable() {
    let err = SmtpMailer::new("ftp://nowhere", "a@example.com").unwrap_err();
    assert!(err.to_string().contains("AUTH_SMTP_URL"), "{err}");
    let err = SmtpMailer::new("smtp://localhost:25", "not an address").unwrap_err();
    assert!(err.to_string().contains("AUTH_MAIL_FROM"), "{err}");
    // Production needs SMTP.
    let vars = [
        ("AUTH_ENV", "production"),
        (
            "AUTH_SIGNING_SECRET",
            "server-test-secret-0123456789abcdef0123",
        ),
        (
            "AUTH_MFA_KEY",
            "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("AUTH_PUBLIC_URL", "https://auth.example.com"),
    ];
    let err = auth_server::Settings::from_lookup(|n| {
        vars.iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_SMTP_URL"), "{err}");
}

#[tokio::test]
async fn console_mailer_logs_the_message() {
    let capture = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = Arc::clone(&capture);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || Writer(Arc::clone(&sink)))
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    ConsoleMailer
        .send(&Email {
            to: "bo@example.com".into(),
            subject: "Confirm your email address".into(),
            body: "https://app.example.com/verify-email?token=xyz".into(),
        })
        .await
        .unwrap();
    let log = String::from_utf8(capture.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("bo@example.com") && log.contains("verify-email?token=xyz"),
        "{log}"
    );
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
