//! The local AWS endpoint for integration tests: a moto server on a free port,
//! killed when the handle drops, plus a fresh set of resources per test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use feedloop_aws::schema::Names;
use feedloop_aws::setup::{self, QueueUrls};

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
        let child = Command::new(&bin)
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
        let moto = Moto::start();
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
