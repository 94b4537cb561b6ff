//! A real SMTP server that keeps what it receives: aiosmtpd (Debian's
//! `python3-aiosmtpd`) with its `Mailbox` handler, writing every mail into a
//! Maildir; tests read the mails back parsed. Each test starts its own, on a
//! free port, and may stop and restart it there (an outage).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::procs::{Proc, find_bin, free_port, temp_dir, wait_for_port};

pub struct SmtpSink {
    pub port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let mut sink = SmtpSink {
            port: free_port(),
            dir: temp_dir("smtp"),
            proc: None,
        };
        sink.restart();
        sink
    }

    /// `SMTP_URL` for it (plain SMTP).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and Maildir.
    pub fn restart(&mut self) {
        let bin = find_bin(
            "aiosmtpd",
            "FLIGHTCTL_TEST_AIOSMTPD",
            &["/usr/bin/aiosmtpd"],
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("aiosmtpd.log"))
            .expect("aiosmtpd log");
        let mut cmd = Command::new(bin);
        // -n: stay root (it would switch to `nobody`, who cannot write here).
        cmd.args(["-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.dir.join("maildir"))
            .stdout(Stdio::null())
            .stderr(log);
        self.proc = Some(Proc::spawn("aiosmtpd", cmd, libc::SIGTERM));
        wait_for_port("aiosmtpd", self.port, Duration::from_secs(15));
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Every mail received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("maildir").join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).ok();
                (modified.unwrap_or(std::time::UNIX_EPOCH), e.path())
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, path)| Mail::parse(&std::fs::read(path).expect("a mail file")))
            .collect()
    }

    /// Wait until `n` mails have arrived and return them all; panics with
    /// the server's log after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            if tokio::time::Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.dir.join("aiosmtpd.log"));
                panic!(
                    "{} of {n} mails arrived within {within:?}; the server's log:\n{}",
                    mails.len(),
                    log.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A received mail, decoded: headers and every leaf part's body (transfer
/// encoding and charset undone).
#[derive(Debug)]
pub struct Mail {
    /// The whole mail's MIME type (`multipart/alternative`).
    pub mime_type: String,
    headers: Vec<(String, String)>,
    /// MIME type and decoded body of each leaf part, in order.
    pub parts: Vec<(String, String)>,
}

impl Mail {
    fn parse(raw: &[u8]) -> Mail {
        let parsed = mailparse::parse_mail(raw).expect("a mail that parses");
        let headers = parsed
            .headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect();
        let mut parts = Vec::new();
        leaves(&parsed, &mut parts);
        Mail {
            mime_type: parsed.ctype.mimetype.clone(),
            headers,
            parts,
        }
    }

    /// A header's (decoded) value; the sink adds `X-MailFrom` and
    /// `X-RcptTo`, the envelope's sender and recipients.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn subject(&self) -> &str {
        self.header("Subject").unwrap_or_default()
    }

    /// The body of the one part of `mime_type` (`text/plain`, `text/html`).
    pub fn body(&self, mime_type: &str) -> &str {
        let mut found = self.parts.iter().filter(|(t, _)| t == mime_type);
        let (_, body) = found
            .next()
            .unwrap_or_else(|| panic!("no {mime_type} part in {:?}", self.parts));
        assert!(found.next().is_none(), "more than one {mime_type} part");
        body
    }
}

fn leaves(mail: &mailparse::ParsedMail, out: &mut Vec<(String, String)>) {
    if mail.subparts.is_empty() {
        let body = mail.get_body().expect("a body that decodes");
        out.push((mail.ctype.mimetype.clone(), body));
    }
    for part in &mail.subparts {
        leaves(part, out);
    }
}
