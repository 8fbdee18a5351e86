//! The local AWS endpoint for integration tests: a moto server on a free port,
//! killed when the handle drops, plus a fresh set of resources per test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use feedloop_aws::schema::Names;
use feedloop_aws::setup::{self, QueueUrls};
use feedloop_aws::SqsQueue;
use feedloop_ingest::poller::poll_once;
use feedloop_ingest::{BatchReport, Ingest};
use feedloop_kit::ports::ingest::{FollowUpSink, ProfileStore, RejectStore};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$FEEDLOOP_PYTHON`, else the project venv's Python (`make test` installs moto into it).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("FEEDLOOP_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

/// moto_server with requests serialised (see the script for why).
pub fn moto_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/moto_serial.py")
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_also_on(None)
    }

    /// As [`Moto::start`], also listening on `also` (same port, same state): Docker's
    /// bridge address, for `sam local`'s containers.
    pub fn start_also_on(also: Option<&str>) -> Moto {
        let bin = python();
        assert!(
            bin.exists(),
            "{} not found: run `make test` (it installs moto into .venv)",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut cmd = Command::new(&bin);
        if let Some(also) = also {
            cmd.env("FEEDLOOP_MOTO_ALSO_HOST", also);
        }
        let child = cmd
            .arg(moto_script())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub async fn sdk(&self) -> SdkConfig {
        setup::sdk_config(Some(&self.endpoint), Some("us-east-1")).await
    }
}

pub struct Stack {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub names: Names,
    pub urls: QueueUrls,
}

impl Stack {
    pub async fn start(prefix: &str) -> Stack {
        Stack::on(Moto::start(), prefix).await
    }

    /// A fresh set of resources on a moto of the caller's.
    pub async fn on(moto: Moto, prefix: &str) -> Stack {
        let sdk = moto.sdk().await;
        let names = Names::with_prefix(prefix);
        let urls = setup::create_resources(&sdk, &names)
            .await
            .expect("create resources on moto");
        Stack {
            moto,
            sdk,
            names,
            urls,
        }
    }

    pub fn ddb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// Put feedback bodies on the ingest queue.
    pub async fn send_ingest(&self, bodies: &[String]) {
        SqsQueue::new(self.sqs(), &self.urls.ingest, 0)
            .send_all(bodies)
            .await
            .expect("send to the ingest queue");
    }

    /// Run `ingest` over the ingest queue, ten messages a batch, until it is empty:
    /// each batch's report.
    pub async fn drain_ingest<S, F>(&self, ingest: &Ingest<S, F>) -> Vec<BatchReport>
    where
        S: ProfileStore + RejectStore,
        F: FollowUpSink,
    {
        let queue = SqsQueue::new(self.sqs(), &self.urls.ingest, 0);
        let mut reports = Vec::new();
        loop {
            let (n, report) = poll_once(&queue, ingest, 10)
                .await
                .expect("poll the ingest queue");
            if n == 0 {
                return reports;
            }
            reports.push(report);
        }
    }

    /// How many items the table holds under a customer's partition (a strongly
    /// consistent read).
    pub async fn items_under(&self, customer: &str) -> usize {
        let out = self
            .ddb()
            .query()
            .table_name(&self.names.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("CUST#{customer}")),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("query a customer's items");
        out.count() as usize
    }

    /// The stack's keys, from its secret in moto (created as `feedloop local up` does,
    /// the first time it is asked for).
    pub async fn keys(&self) -> feedloop_core::keys::StackKeys {
        let arn = feedloop_aws::secrets::ensure_local_secret(&self.sdk, &self.names.secret)
            .await
            .expect("create the stack secret on moto");
        feedloop_aws::secrets::stack_keys(&self.sdk, &arn)
            .await
            .expect("read the stack secret from moto")
    }

    /// moto's record of everything it holds, sent e-mails and SMS included.
    pub async fn moto_data(&self) -> serde_json::Value {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.moto.endpoint.trim_start_matches("http://").to_owned();
        let mut conn = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect to moto");
        let req = format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        conn.write_all(req.as_bytes())
            .await
            .expect("request data.json");
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.expect("read data.json");
        let text = String::from_utf8_lossy(&raw);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        serde_json::from_str(body).expect("data.json is JSON")
    }
}

/// One e-mail as moto's SES received it (raw MIME, as the dispatcher sends it).
#[derive(Debug, Clone)]
pub struct SentMail {
    pub source: String,
    pub to: Vec<String>,
    pub raw: String,
}

impl SentMail {
    /// Every sent e-mail in moto's `data.json`.
    pub fn all(data: &serde_json::Value) -> Vec<SentMail> {
        data["ses"]["RawMessage"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| SentMail {
                source: m["source"].as_str().unwrap_or_default().to_owned(),
                to: m["destinations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect(),
                raw: m["raw_data"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// A top-level header's value, folded lines joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut().filter(|_| line.starts_with([' ', '\t'])) {
                v.push_str(line.trim_start());
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_owned());
                }
            }
        }
        value
    }

    /// The decoded `text/plain` or `text/html` part.
    pub fn part(&self, subtype: &str) -> String {
        use base64::Engine;
        let start = self
            .raw
            .find(&format!("Content-Type: text/{subtype}"))
            .unwrap_or_else(|| panic!("no text/{subtype} part in {}", self.raw));
        let rest = &self.raw[start..];
        let body = &rest[rest.find("\r\n\r\n").expect("part headers end") + 4..];
        let b64: String = body
            .split("\r\n")
            .take_while(|l| !l.starts_with("--"))
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("the part is base64");
        String::from_utf8(bytes).expect("the part is UTF-8")
    }
}
