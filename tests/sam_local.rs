//! SAM CLI's own emulator running the `sam build` output against moto: `sam local
//! invoke` for each function, `sam local start-api` with the README's curl examples and
//! `sam local start-lambda` with its `aws lambda invoke` example.
//!
//! Ignored by default: they need a Docker daemon, the Lambda base image (or the
//! stand-in) and a `sam build` folder. `make sam-local-check` (part of `make test`)
//! provides all three and runs them with `--ignored`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use feedloop_aws::store::DynamoStore;
use feedloop_core::envelope::CustomerId;
use feedloop_kit::ports::query::QueryStore;
use feedloop_tests::harness::{Moto, Stack};
use serde_json::Value;

/// Long enough for SAM to build its emulator image on first use (layers included).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(240);
const SERVER_START: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn build_dir() -> PathBuf {
    let dir = std::env::var_os("FEEDLOOP_SAM_BUILD_DIR")
        .map(PathBuf::from)
        .expect("FEEDLOOP_SAM_BUILD_DIR is not set: run these through `make sam-local-check`");
    assert!(
        dir.join("template.yaml").exists(),
        "{} has no template.yaml: run `make sam-check` first",
        dir.display()
    );
    dir
}

fn venv_bin(name: &str) -> PathBuf {
    repo().join(".venv/bin").join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Docker's default bridge address: SAM's containers run on that bridge and reach the
/// host there (`--add-host host.docker.internal:<it>`), so moto listens there too.
fn bridge_gateway() -> String {
    let out = Command::new("docker")
        .args([
            "network",
            "inspect",
            "bridge",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
        ])
        .output()
        .expect("run docker network inspect");
    assert!(
        out.status.success(),
        "docker network inspect bridge: {out:?}"
    );
    let gateway = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    if !gateway.is_empty() {
        return gateway;
    }
    // Older daemons (Debian's docker.io 20.10) leave the default bridge's gateway out of
    // `inspect`; it is the address of the host's docker0.
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "docker0"])
        .output()
        .expect("run ip addr show docker0");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .unwrap_or_else(|| panic!("no IPv4 address on docker0: {text}"))
        .to_owned()
}

/// A stack on a moto the containers can reach, as `make local-up DOCKER_BRIDGE=1` gives.
async fn stack() -> (Stack, String) {
    let gateway = bridge_gateway();
    let moto = Moto::start_also_on(Some(&gateway));
    let stack = Stack::on(moto, "feedloop-local").await;
    stack.keys().await;
    (stack, gateway)
}

fn port_of(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

/// `events/env.json` as a user runs it after `make local-up`, with moto's port swapped
/// for this test's: the names and the queue in it must be what the stack has.
fn env_vars(stack: &Stack, dir: &Path) -> PathBuf {
    let raw = std::fs::read_to_string(repo().join("events/env.json")).expect("events/env.json");
    let endpoint = format!(
        "http://host.docker.internal:{}",
        port_of(&stack.moto.endpoint)
    );
    let raw = raw.replace("http://host.docker.internal:4566", &endpoint);
    let env: Value = serde_json::from_str(&raw).expect("events/env.json is JSON");
    let queue_path = stack
        .urls
        .followup
        .split_once("//")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1;
    for (function, vars) in env.as_object().expect("one object per function") {
        assert_eq!(
            vars["FEEDLOOP_ENDPOINT_URL"],
            endpoint.as_str(),
            "{function}"
        );
        assert_eq!(vars["TABLE_NAME"], stack.names.table.as_str(), "{function}");
        if let Some(secret) = vars.get("SECRET_ARN") {
            assert_eq!(secret, stack.names.secret.as_str(), "{function}");
        }
        if let Some(url) = vars.get("FOLLOWUP_QUEUE_URL") {
            assert_eq!(
                url,
                format!("{endpoint}/{queue_path}").as_str(),
                "{function}"
            );
        }
    }
    let path = dir.join("env.json");
    std::fs::write(&path, raw).expect("write env.json");
    path
}

/// The options every `sam local` command here shares: the check build, the x86_64 base
/// image as it is on this machine (real or stand-in), moto through the bridge.
fn sam(sub: &[&str], env_file: &Path, gateway: &str) -> Command {
    let build = build_dir();
    let mut cmd = Command::new(venv_bin("sam"));
    cmd.args(["local"])
        .args(sub)
        .arg("-t")
        .arg(build.join("template.yaml"))
        .arg("--skip-pull-image")
        .args(["--add-host", &format!("host.docker.internal:{gateway}")])
        .args(["--parameter-overrides", "Architecture=x86_64"])
        .arg("--env-vars")
        .arg(env_file)
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .current_dir(repo());
    cmd
}

/// Runs a command to its end, killing it past `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().expect("wait for the command");
    let _ = watchdog.join();
    out
}

fn invoke(function: &str, event: &str, env_file: &Path, gateway: &str) -> Value {
    let mut cmd = sam(&["invoke", function], env_file, gateway);
    cmd.arg("-e").arg(repo().join("events").join(event));
    let t0 = Instant::now();
    let out = run_bounded(cmd, INVOKE_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sam local invoke {function} -e events/{event}: {}\n{stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "sam local invoke {function} -e events/{event}: {:.1} s -> {}",
        t0.elapsed().as_secs_f64(),
        stdout.trim()
    );
    // SAM prints the function's response as the last line of stdout.
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let answer: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{function}'s response is not JSON ({e}): {stdout}\n{stderr}"));
    if answer
        .get("batchItemFailures")
        .is_some_and(|f| f != &serde_json::json!([]))
    {
        // The function's own log says why; the assertion after this shows what.
        eprintln!("{function} log:\n{stderr}");
    }
    answer
}

/// What each test starts from: a stack the containers reach, the env file for it in a
/// folder of the test's own, and the store to check outcomes on.
struct Fixture {
    stack: Stack,
    gateway: String,
    tmp: PathBuf,
    env_file: PathBuf,
    store: DynamoStore,
}

async fn fixture(name: &str) -> Fixture {
    let (stack, gateway) = stack().await;
    let tmp = tempdir(name);
    let env_file = env_vars(&stack, &tmp);
    let store = DynamoStore::for_queries(stack.ddb(), &stack.names.table);
    Fixture {
        stack,
        gateway,
        tmp,
        env_file,
        store,
    }
}

fn cust_042() -> CustomerId {
    CustomerId::parse("cust-042").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker, the Lambda base image and a sam build: make sam-local-check"]
async fn sam_local_invoke_runs_each_function_against_moto() {
    let Fixture {
        stack: _stack,
        gateway,
        env_file,
        store,
        ..
    } = fixture("invoke").await;

    let answer = invoke("IngestFunction", "review.json", &env_file, &gateway);
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let profile = store
        .profile(&cust_042())
        .await
        .expect("read the profile")
        .expect("the ingest function wrote cust-042's profile");
    assert_eq!(profile.feedback_count, 1);
    assert_eq!(
        profile
            .contact
            .as_ref()
            .and_then(|c| c.value.email.as_deref()),
        Some("ada@example.com")
    );
    let feedback = store
        .feedback_page(&cust_042(), 10, None)
        .await
        .expect("read cust-042's feedback");
    assert_eq!(feedback.items.len(), 1);
    assert_eq!(feedback.items[0].feedback_id.as_str(), "google-review-9912");

    let answer = invoke(
        "FollowUpFunction",
        "followup-intent.json",
        &env_file,
        &gateway,
    );
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let attempts = store.followups(&cust_042()).await.expect("read attempts");
    let attempt = attempts
        .iter()
        .find(|a| {
            a.feedback_id.as_str() == "nps-2026-11-7781" && a.playbook == "detractor_recovery"
        })
        .unwrap_or_else(|| panic!("no dry-run decision recorded: {attempts:?}"));
    println!(
        "follow-up decision recorded: {:?} ({})",
        attempt.status,
        attempt.reason.as_deref().unwrap_or("-")
    );

    let answer = invoke("ApiFunction", "api-get-customer.json", &env_file, &gateway);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value =
        serde_json::from_str(answer["body"].as_str().expect("a body")).expect("JSON body");
    assert_eq!(body["customer_id"], "cust-042", "{body}");
    assert_eq!(body["profile"]["feedback_count"], 1, "{body}");
}

/// A `sam local start-*` server on a loopback port, stopped (and its containers with
/// it) when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(sub: &str, env_file: &Path, gateway: &str, dir: &Path) -> Server {
        let port = free_port();
        let log = dir.join(format!("{sub}.log"));
        let file = std::fs::File::create(&log).expect("server log");
        let mut cmd = sam(&[sub], env_file, gateway);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting sam local {sub}: {e}"));
        let server = Server { child, port, log };
        let deadline = Instant::now() + SERVER_START;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sam local {sub} did not open port {port}: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: SAM stops the containers it started.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The commands of the README's "With SAM CLI" block that start with `prefix`, with the
/// README's port swapped for the server's.
fn readme_commands(prefix: &str, readme_port: u16, port: u16) -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("### With SAM CLI")
        .nth(1)
        .expect("README has a \"### With SAM CLI\" section");
    let section = section.split("\n### ").next().unwrap_or(section);
    let commands: Vec<String> = section
        .lines()
        .map(|l| l.split(" #").next().unwrap_or(l).trim())
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            l.replace(
                &format!("127.0.0.1:{readme_port}"),
                &format!("127.0.0.1:{port}"),
            )
        })
        .collect();
    assert!(
        !commands.is_empty(),
        "no `{prefix}` command in the README's SAM section"
    );
    commands
}

fn bash(command: &str, dir: &Path) -> Output {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", command])
        .current_dir(dir)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env(
            "PATH",
            format!(
                "{}:{}",
                repo().join(".venv-awscli/bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    run_bounded(cmd, INVOKE_TIMEOUT)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker, the Lambda base image and a sam build: make sam-local-check"]
async fn sam_local_start_lambda_and_start_api_answer_the_readme_examples() {
    let Fixture {
        stack: _stack,
        gateway,
        tmp,
        env_file,
        store,
    } = fixture("servers").await;
    // The README's commands name files under events/ from the repository root.
    std::fs::create_dir_all(tmp.join("events")).unwrap();
    for f in ["review.json", "survey.json"] {
        std::fs::copy(repo().join("events").join(f), tmp.join("events").join(f)).unwrap();
    }

    let lambda = Server::start("start-lambda", &env_file, &gateway, &tmp);
    for command in readme_commands("aws lambda invoke", 3001, lambda.port) {
        let t0 = Instant::now();
        let out = bash(&command, &tmp);
        assert!(
            out.status.success(),
            "{command}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            lambda.log_text()
        );
        println!("{command}: {:.1} s", t0.elapsed().as_secs_f64());
        let answer = std::fs::read_to_string(tmp.join("out.json"))
            .expect("aws lambda invoke wrote out.json");
        let answer: Value = serde_json::from_str(&answer).expect("out.json is JSON");
        assert_eq!(
            answer,
            serde_json::json!({"batchItemFailures": []}),
            "{command}"
        );
    }
    drop(lambda);
    let profile = store
        .profile(&cust_042())
        .await
        .expect("read the profile")
        .expect("start-lambda's ingest wrote cust-042's profile");
    let written = profile.feedback_count;
    assert!(written >= 1, "{written}");

    let api = Server::start("start-api", &env_file, &gateway, &tmp);
    let commands = readme_commands("curl", 3000, api.port);
    for command in &commands {
        let t0 = Instant::now();
        let out = bash(&format!("{command} --fail-with-body --max-time 120"), &tmp);
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{command}: {}\n{body}\n{}",
            out.status,
            api.log_text()
        );
        println!("{command}: {:.1} s", t0.elapsed().as_secs_f64());
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {body}"));
        let path = command
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split_once('/'))
            .map(|(_, p)| p);
        let path = path.unwrap_or("").trim_end_matches('\'');
        if path == "customers/cust-042" {
            assert_eq!(json["customer_id"], "cust-042", "{json}");
            assert_eq!(json["profile"]["feedback_count"], written, "{json}");
        } else if path.starts_with("segments/detractor") {
            // events/survey.json is an NPS 3.
            let ids: Vec<&Value> = json["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| &i["customer_id"])
                .collect();
            assert!(ids.contains(&&Value::from("cust-042")), "{json}");
        }
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("feedloop-sam-local-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
