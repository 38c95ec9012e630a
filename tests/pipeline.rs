//! The example pipelines under examples/ci, run for real: the commands their
//! GitHub workflow steps and GitLab jobs run are read from the pipeline
//! files (so a renamed step output, flag or subcommand fails here) and
//! executed with bash against the reference broker. Only the forge's API is
//! replaced: by a recording fake that keeps comments, issues, merged
//! requests and plan artifacts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::support::{Run, SEED_ENV, Server, TOKEN, bin, example, fidelity, run, seed_path};

const MAINT_PASSWORD: &str = "maintenance-demo";
const STACK: &str = "examples/maintenance/steady";

/// A comment, note or issue on the fake forge.
#[derive(Debug, Clone)]
struct Post {
    id: u64,
    body: String,
    open: bool,
}

/// A merge: which request it came from, and that request's reviewed head.
#[derive(Debug, Clone)]
struct Merge {
    request: u64,
    head: String,
}

#[derive(Debug, Default)]
struct ForgeState {
    /// `METHOD /path` of every request, in order.
    requests: Vec<String>,
    comments: Vec<Post>,
    issues: Vec<Post>,
    merges: BTreeMap<String, Merge>,
    /// GitHub: (artifact name, head commit, zip). GitLab: (plan job's
    /// output directory, head commit).
    artifacts: Vec<(String, String, Vec<u8>)>,
    jobs: Vec<(PathBuf, String)>,
    next_id: u64,
}

/// The fake forge: GitHub's and GitLab's REST paths that poolform-ci uses.
struct Forge {
    state: Arc<Mutex<ForgeState>>,
    url: String,
    _runtime: tokio::runtime::Runtime,
}

impl Forge {
    fn start() -> Forge {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(ForgeState {
            next_id: 100,
            ..ForgeState::default()
        }));
        let shared = state.clone();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let base = url.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let state = shared.clone();
            let base = base.clone();
            async move { answer(&state, &base, &method, &uri, &body) }
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        Forge {
            state,
            url,
            _runtime: runtime,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ForgeState> {
        self.state.lock().unwrap()
    }
}

fn json_answer(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

fn posts(items: &[Post], key: &str) -> Value {
    Value::Array(
        items
            .iter()
            .map(|p| json!({"id": p.id, "number": p.id, "iid": p.id, key: p.body}))
            .collect(),
    )
}

/// Answers one forge request and records it.
fn answer(
    state: &Mutex<ForgeState>,
    base: &str,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Response {
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{method} {}", uri.path()));
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // Every list fits on one page, which the script sees as the last.
    let query = uri.query().unwrap_or_default();
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    let id = s.next_id;
    match (method.as_str(), segments.as_slice()) {
        // GitHub
        ("GET", ["repos", _, _, "issues", _, "comments"]) => {
            json_answer(StatusCode::OK, posts(&s.comments, "body"))
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            if !s.issues.iter().any(|i| i.id.to_string() == *n) {
                s.next_id += 1;
                s.comments.push(Post {
                    id,
                    body: text("body").unwrap(),
                    open: true,
                });
            }
            json_answer(StatusCode::CREATED, json!({"id": id}))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", c]) => {
            let post = s
                .comments
                .iter_mut()
                .find(|p| p.id.to_string() == *c)
                .unwrap();
            post.body = text("body").unwrap();
            json_answer(StatusCode::OK, json!({"id": post.id}))
        }
        ("GET", ["repos", _, _, "issues"]) => {
            let open: Vec<Post> = s.issues.iter().filter(|i| i.open).cloned().collect();
            json_answer(StatusCode::OK, posts(&open, "body"))
        }
        ("POST", ["repos", _, _, "issues"]) => {
            s.next_id += 1;
            assert_eq!(body["labels"], json!(["poolform-drift"]));
            s.issues.push(Post {
                id,
                body: text("body").unwrap(),
                open: true,
            });
            json_answer(StatusCode::CREATED, json!({"number": id}))
        }
        ("PATCH", ["repos", _, _, "issues", n]) => {
            let issue = s
                .issues
                .iter_mut()
                .find(|i| i.id.to_string() == *n)
                .unwrap();
            if let Some(b) = body["body"].as_str() {
                issue.body = b.to_owned();
            }
            if body["state"] == "closed" {
                issue.open = false;
            }
            json_answer(StatusCode::OK, json!({"number": issue.id}))
        }
        ("GET", ["repos", _, _, "commits", sha, "pulls"]) => {
            let pulls = s.merges.get(*sha).map_or(
                json!([]),
                |m| json!([{"number": m.request, "head": {"sha": m.head}}]),
            );
            json_answer(StatusCode::OK, pulls)
        }
        ("GET", ["repos", _, _, "actions", "artifacts"]) => {
            let artifacts: Vec<Value> = s
                .artifacts
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, (name, _, _))| query.contains(&format!("name={name}&")))
                .map(|(i, (name, head, _))| {
                    json!({"name": name, "expired": false, "workflow_run": {"head_sha": head},
                           "archive_download_url": format!("{base}/download/{i}")})
                })
                .collect();
            json_answer(StatusCode::OK, json!({"artifacts": artifacts}))
        }
        ("GET", ["download", i]) => {
            let (_, _, zip) = &s.artifacts[i.parse::<usize>().unwrap()];
            (StatusCode::OK, zip.clone()).into_response()
        }
        // GitLab
        ("GET", ["projects", _, "merge_requests", _, "notes"]) => {
            json_answer(StatusCode::OK, posts(&s.comments, "body"))
        }
        ("POST", ["projects", _, "merge_requests", _, "notes"]) => {
            s.next_id += 1;
            s.comments.push(Post {
                id,
                body: text("body").unwrap(),
                open: true,
            });
            json_answer(StatusCode::CREATED, json!({"id": id}))
        }
        ("PUT", ["projects", _, "merge_requests", _, "notes", n]) => {
            let post = s
                .comments
                .iter_mut()
                .find(|p| p.id.to_string() == *n)
                .unwrap();
            post.body = text("body").unwrap();
            json_answer(StatusCode::OK, json!({"id": post.id}))
        }
        ("GET", ["projects", _, "issues"]) => {
            let open: Vec<Post> = s.issues.iter().filter(|i| i.open).cloned().collect();
            json_answer(StatusCode::OK, posts(&open, "description"))
        }
        ("POST", ["projects", _, "issues"]) => {
            s.next_id += 1;
            s.issues.push(Post {
                id,
                body: text("description").unwrap(),
                open: true,
            });
            json_answer(StatusCode::CREATED, json!({"iid": id}))
        }
        ("PUT", ["projects", _, "issues", n]) => {
            let issue = s
                .issues
                .iter_mut()
                .find(|i| i.id.to_string() == *n)
                .unwrap();
            if let Some(b) = body["description"].as_str() {
                issue.body = b.to_owned();
            }
            if body["state_event"] == "close" {
                issue.open = false;
            }
            json_answer(StatusCode::OK, json!({"iid": issue.id}))
        }
        ("POST", ["projects", _, "issues", _, "notes"]) => {
            json_answer(StatusCode::CREATED, json!({"id": id}))
        }
        (
            "GET",
            [
                "projects",
                _,
                "repository",
                "commits",
                sha,
                "merge_requests",
            ],
        ) => {
            let mrs = s
                .merges
                .get(*sha)
                .map_or(json!([]), |m| json!([{"iid": m.request}]));
            json_answer(StatusCode::OK, mrs)
        }
        ("GET", ["projects", _, "merge_requests", iid]) => {
            let head = s
                .merges
                .values()
                .find(|m| m.request.to_string() == *iid)
                .unwrap()
                .head
                .clone();
            json_answer(StatusCode::OK, json!({"iid": iid, "sha": head}))
        }
        ("GET", ["projects", _, "merge_requests", _, "pipelines"]) => {
            let pipelines: Vec<Value> = s
                .jobs
                .iter()
                .enumerate()
                .rev()
                .map(|(i, (_, head))| json!({"id": i, "sha": head}))
                .collect();
            json_answer(StatusCode::OK, Value::Array(pipelines))
        }
        ("GET", ["projects", _, "pipelines", p, "jobs"]) => json_answer(
            StatusCode::OK,
            json!([{"id": p.parse::<u64>().unwrap(), "stage": "plan"}]),
        ),
        ("GET", ["projects", _, "jobs", job, "artifacts", path @ ..]) => {
            let (dir, _) = &s.jobs[job.parse::<usize>().unwrap()];
            let file = path.last().unwrap();
            match std::fs::read(dir.join(file)) {
                Ok(bytes) => (StatusCode::OK, bytes).into_response(),
                Err(_) => json_answer(StatusCode::NOT_FOUND, json!({"message": "404 Not found"})),
            }
        }
        _ => json_answer(
            StatusCode::NOT_FOUND,
            json!({"message": format!("no fake for {method} {}", uri.path())}),
        ),
    }
}

/// A repository checkout: the script where the pipelines expect it, and
/// the stack directory holding the config version under test.
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new() -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        let scripts = dir.path().join("examples/ci");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::copy("examples/ci/poolform-ci", scripts.join("poolform-ci")).unwrap();
        Checkout { dir }
    }

    /// Puts the files of `examples/maintenance/STATE` in the stack directory.
    fn config(&self, state: &str) {
        let stack = self.dir.path().join(STACK);
        let _ = std::fs::remove_dir_all(&stack);
        std::fs::create_dir_all(&stack).unwrap();
        for entry in std::fs::read_dir(example(&format!("maintenance/{state}"))).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, stack.join(path.file_name().unwrap())).unwrap();
        }
    }

    fn out(&self) -> PathBuf {
        self.dir
            .path()
            .join("poolform-out")
            .join(STACK.replace('/', "-"))
    }
}

fn read_yaml(path: &str) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The `run` step of `workflow` that calls poolform-ci, and its job.
fn script_step(workflow: &Value) -> (&Value, &Value) {
    for job in workflow["jobs"].as_object().unwrap().values() {
        for step in job["steps"].as_array().unwrap() {
            if step["run"]
                .as_str()
                .is_some_and(|r| r.contains("examples/ci/poolform-ci"))
            {
                return (job, step);
            }
        }
    }
    panic!("no step runs examples/ci/poolform-ci");
}

/// `${{ expr }}` in `text` replaced from `values`; an unknown expression
/// fails the test, so that the pipeline cannot depend on one untested.
fn substitute(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..].find("}}").expect("closed expression") + start;
        let expr = rest[start + 3..end].trim();
        out.push_str(&rest[..start]);
        out.push_str(
            values
                .get(expr)
                .unwrap_or_else(|| panic!("no test value for ${{{{ {expr} }}}}")),
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs the poolform-ci step of a GitHub workflow in `checkout`.
fn github_step(
    workflow: &str,
    checkout: &Checkout,
    forge: &Forge,
    values: &BTreeMap<&str, String>,
    sha: &str,
) -> (Run, BTreeMap<String, String>) {
    let workflow = read_yaml(workflow);
    let (job, step) = script_step(&workflow);
    let stacks = &job["strategy"]["matrix"]["stack"];
    assert!(
        stacks.as_array().unwrap().iter().any(|s| s == STACK),
        "{STACK} in the matrix"
    );
    let group = job["concurrency"]["group"].as_str().unwrap();
    assert!(
        group.contains("${{ matrix.stack }}"),
        "concurrency per stack: {group}"
    );
    let output = checkout.dir.path().join("github-output");
    std::fs::write(&output, "").unwrap();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(step["run"].as_str().unwrap())
        .current_dir(checkout.dir.path())
        .env("PATH", path_with_poolform())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_API_URL", &forge.url)
        .env("GITHUB_REPOSITORY", "corp/configs")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_SHA", sha)
        .env("MAINT_PASSWORD", MAINT_PASSWORD)
        .env_remove("GITLAB_CI");
    for (key, value) in step["env"].as_object().unwrap() {
        command.env(key, substitute(value.as_str().unwrap(), values));
    }
    let ran = run(&mut command);
    let outputs = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (ran, outputs)
}

fn path_with_poolform() -> String {
    let dir = Path::new(bin()).parent().unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// What GitHub's upload-artifact does with the plan step's outputs: checks
/// that the workflow wires them, and zips the directory's contents.
fn upload(forge: &Forge, checkout: &Checkout, outputs: &BTreeMap<String, String>, head: &str) {
    let workflow = read_yaml("examples/ci/github/poolform-plan.yml");
    let (job, step) = script_step(&workflow);
    let id = step["id"].as_str().expect("the plan step has an id");
    let upload = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("an upload step");
    assert_eq!(
        upload["with"]["name"],
        format!("${{{{ steps.{id}.outputs.artifact }}}}")
    );
    assert_eq!(
        upload["with"]["path"],
        format!("${{{{ steps.{id}.outputs.path }}}}")
    );
    let dir = checkout.dir.path().join(&outputs["path"]);
    let zip = checkout.dir.path().join("artifact.zip");
    let _ = std::fs::remove_file(&zip);
    let zipped = Command::new("zip")
        .arg("-q")
        .arg("-r")
        .arg(&zip)
        .arg(".")
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(zipped.success());
    forge.state().artifacts.push((
        outputs["artifact"].clone(),
        head.to_owned(),
        std::fs::read(&zip).unwrap(),
    ));
}

fn github_values(server: &Server, pr: u64, head: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("matrix.stack", STACK.to_owned()),
        ("secrets.POOLFORM_BROKER", server.url.clone()),
        ("secrets.POOLFORM_TOKEN", TOKEN.to_owned()),
        ("github.token", "forge-token".to_owned()),
        ("github.event.pull_request.number", pr.to_string()),
        ("github.event.pull_request.head.sha", head.to_owned()),
    ])
}

/// Applies `examples/maintenance/STATE` straight to the broker: a change
/// made outside the reviewed pipeline.
fn apply_directly(server: &Server, state: &str) {
    let config = example(&format!("maintenance/{state}"));
    let scenario = format!("applied outside the pipeline: {state}");
    block_on(server.apply_checked(&scenario, &config, &[], SEED_ENV))
        .0
        .expect_code(0, "apply outside the pipeline");
}

/// Runs a pipeline's apply and checks its fidelity to the reviewed plan it
/// applied (the artifact it left in the stack's output directory).
fn applied(
    scenario: &str,
    server: &Server,
    checkout: &Checkout,
    apply: impl FnOnce() -> Run,
) -> Run {
    let start = block_on(server.last_seq());
    let ran = apply();
    let plan = std::fs::read(checkout.out().join("plan.json"))
        .ok()
        .and_then(|bytes| poolform::plan::read_saved(&bytes).ok());
    let converged = server.converged(&checkout.dir.path().join(STACK), SEED_ENV);
    fidelity(
        scenario,
        plan.as_ref(),
        &block_on(server.events(start)),
        ran.code == Some(0),
        converged,
    );
    ran
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn live_members(server: &Server) -> Vec<String> {
    let snapshot = block_on(server.snapshot());
    snapshot
        .pools
        .iter()
        .find(|p| p.name == "live")
        .unwrap()
        .members
        .to_vec()
}

#[test]
fn github_plan_comment_apply_and_drift_run_against_the_reference_broker() {
    let server = Server::start(&["--seed", &seed_path().to_string_lossy()]);
    let forge = Forge::start();
    let checkout = Checkout::new();
    let plan = "examples/ci/github/poolform-plan.yml";

    // A pull request takes rds-02 out; two pushes: one comment, updated.
    checkout.config("rds-02-out");
    let (first, _) = github_step(
        plan,
        &checkout,
        &forge,
        &github_values(&server, 7, "head-1"),
        "head-1",
    );
    first.expect_code(0, "plan");
    let (second, outputs) = github_step(
        plan,
        &checkout,
        &forge,
        &github_values(&server, 7, "head-2"),
        "head-2",
    );
    let second = second.expect_code(0, "plan again");
    assert!(
        second.stdout.contains("poolform will make these changes"),
        "{}",
        second.stdout
    );
    {
        let state = forge.state();
        assert_eq!(
            state.comments.len(),
            1,
            "one comment per stack: {:?}",
            state.requests
        );
        let comment = &state.comments[0].body;
        assert!(
            comment.starts_with(&format!("<!-- poolform-ci:stack={STACK} -->")),
            "{comment}"
        );
        assert!(comment.contains("#### Drains and disconnects"), "{comment}");
        assert!(
            state
                .requests
                .iter()
                .any(|r| r.starts_with("PATCH /repos/corp/configs/issues/comments/"))
        );
    }
    upload(&forge, &checkout, &outputs, "head-2");

    // The merge applies exactly the reviewed plan.
    forge.state().merges.insert(
        "merge-1".into(),
        Merge {
            request: 7,
            head: "head-2".into(),
        },
    );
    let apply = "examples/ci/github/poolform-apply.yml";
    let values = github_values(&server, 7, "head-2");
    applied("github pipeline apply", &server, &checkout, || {
        github_step(apply, &checkout, &forge, &values, "merge-1").0
    })
    .expect_code(0, "apply");
    assert!(!live_members(&server).contains(&"rds-02".to_owned()));

    // A reviewed plan the broker moved away from fails the job.
    checkout.config("rds-02-back");
    let (planned, outputs) = github_step(
        plan,
        &checkout,
        &forge,
        &github_values(&server, 8, "head-3"),
        "head-3",
    );
    planned.expect_code(0, "plan of the revert");
    upload(&forge, &checkout, &outputs, "head-3");
    apply_directly(&server, "rds-02-back");
    apply_directly(&server, "rds-02-out");
    forge.state().merges.insert(
        "merge-2".into(),
        Merge {
            request: 8,
            head: "head-3".into(),
        },
    );
    let values = github_values(&server, 8, "head-3");
    let stale = applied("github pipeline apply, stale", &server, &checkout, || {
        github_step(apply, &checkout, &forge, &values, "merge-2").0
    });
    let stale = stale.expect_code(1, "stale plan");
    assert!(stale.stderr.contains("stale"), "{}", stale.stderr);

    // A merge without a reviewed plan for this stack, or with one made for
    // another stack, fails too.
    forge.state().merges.insert(
        "merge-3".into(),
        Merge {
            request: 9,
            head: "head-9".into(),
        },
    );
    let (missing, _) = github_step(
        apply,
        &checkout,
        &forge,
        &github_values(&server, 9, "head-9"),
        "merge-3",
    );
    assert!(
        missing
            .expect_code(1, "no artifact")
            .stderr
            .contains("no plan artifact")
    );
    std::fs::write(checkout.out().join("stack-dir"), "examples/two-divisions\n").unwrap();
    std::fs::write(checkout.out().join("commit"), "head-9\n").unwrap();
    upload(&forge, &checkout, &outputs, "head-9");
    let (foreign, _) = github_step(
        apply,
        &checkout,
        &forge,
        &github_values(&server, 9, "head-9"),
        "merge-3",
    );
    assert!(
        foreign
            .expect_code(1, "foreign plan")
            .stderr
            .contains("foreign plan")
    );

    // Drift: main says steady, the broker has rds-02 out.
    checkout.config("steady");
    let drift = "examples/ci/github/poolform-drift.yml";
    let values = github_values(&server, 0, "main");
    github_step(drift, &checkout, &forge, &values, "main")
        .0
        .expect_code(0, "drift found");
    github_step(drift, &checkout, &forge, &values, "main")
        .0
        .expect_code(0, "drift again");
    {
        let state = forge.state();
        assert_eq!(state.issues.len(), 1, "one issue per stack");
        assert!(
            state.issues[0].open && state.issues[0].body.contains("rds-02"),
            "{:?}",
            state.issues
        );
    }
    let mut unreachable = values.clone();
    unreachable.insert("secrets.POOLFORM_BROKER", "http://127.0.0.1:9".to_owned());
    let before = forge.state().requests.len();
    github_step(drift, &checkout, &forge, &unreachable, "main")
        .0
        .expect_code(1, "broker down");
    assert_eq!(
        forge.state().requests.len(),
        before,
        "an error touches no issue"
    );
    apply_directly(&server, "steady");
    github_step(drift, &checkout, &forge, &values, "main")
        .0
        .expect_code(0, "drift gone");
    assert!(
        !forge.state().issues[0].open,
        "closed once the drift is gone"
    );
}

/// Runs the script line of a GitLab job in `checkout`.
fn gitlab_job(name: &str, checkout: &Checkout, forge: &Forge, server: &Server, sha: &str) -> Run {
    let pipeline = read_yaml("examples/ci/gitlab/poolform.gitlab-ci.yml");
    let job = &pipeline[name];
    assert!(!job.is_null(), "job {name}");
    let template = &pipeline[job["extends"].as_str().unwrap()];
    let stacks = &template["parallel"]["matrix"][0]["STACK"];
    assert!(
        stacks.as_array().unwrap().iter().any(|s| s == STACK),
        "{STACK} in the matrix"
    );
    let out = template["variables"]["POOLFORM_CI_OUT"].as_str().unwrap();
    let script = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    run(Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(checkout.dir.path())
        .env("PATH", path_with_poolform())
        .env("GITLAB_CI", "true")
        .env_remove("GITHUB_ACTIONS")
        .env("CI_API_V4_URL", &forge.url)
        .env("CI_PROJECT_ID", "42")
        .env("CI_MERGE_REQUEST_IID", "5")
        .env("CI_COMMIT_SHA", sha)
        .env("GITLAB_TOKEN", "forge-token")
        .env("STACK", STACK)
        .env("POOLFORM_CI_OUT", out)
        .env("POOLFORM_BROKER", &server.url)
        .env("POOLFORM_TOKEN", TOKEN)
        .env("MAINT_PASSWORD", MAINT_PASSWORD))
}

#[test]
fn gitlab_plan_note_apply_and_drift_run_against_the_reference_broker() {
    let server = Server::start(&["--seed", &seed_path().to_string_lossy()]);
    let forge = Forge::start();
    let checkout = Checkout::new();
    checkout.config("rds-02-out");
    gitlab_job("poolform-plan", &checkout, &forge, &server, "head-1").expect_code(0, "plan");
    gitlab_job("poolform-plan", &checkout, &forge, &server, "head-1").expect_code(0, "plan again");
    {
        let state = forge.state();
        assert_eq!(state.comments.len(), 1, "one note per stack");
        assert!(
            state
                .requests
                .iter()
                .any(|r| r.starts_with("PUT /projects/42/merge_requests/5/notes/"))
        );
    }
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(checkout.out().join("gl-code-quality-report.json")).unwrap(),
    )
    .expect("a code quality report");
    assert!(report.is_array());
    // The plan job's artifacts, as GitLab keeps them.
    let kept = checkout.dir.path().join("kept-artifacts");
    std::fs::create_dir_all(&kept).unwrap();
    for file in ["plan.json", "stack-dir", "commit"] {
        std::fs::copy(checkout.out().join(file), kept.join(file)).unwrap();
    }
    forge.state().jobs.push((kept, "head-1".into()));
    forge.state().merges.insert(
        "merge-1".into(),
        Merge {
            request: 5,
            head: "head-1".into(),
        },
    );
    applied("gitlab pipeline apply", &server, &checkout, || {
        gitlab_job("poolform-apply", &checkout, &forge, &server, "merge-1")
    })
    .expect_code(0, "apply");
    assert!(!live_members(&server).contains(&"rds-02".to_owned()));

    checkout.config("steady");
    gitlab_job("poolform-drift", &checkout, &forge, &server, "main").expect_code(0, "drift");
    assert!(forge.state().issues.iter().any(|i| i.open), "a drift issue");
    apply_directly(&server, "steady");
    gitlab_job("poolform-drift", &checkout, &forge, &server, "main").expect_code(0, "no drift");
    assert!(forge.state().issues.iter().all(|i| !i.open), "closed");
}
