//! Keeps the Fly.io deployment files consistent with each other:
//! `fly.toml`, `fly.private.toml` and `Dockerfile.slim`; this file owns the tests.
//!
//! std only: a tiny TOML-ish line parser (`toml`) and a tiny Dockerfile parser
//! (`dockerfile`), just enough for these files. `checks::check_all` returns every problem
//! found (each naming the file and the values that disagree); the `rejects_*` tests feed
//! it broken copies so it cannot pass silently.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/target-deploy cargo test --test deploy_files`

mod checks;
mod dockerfile;
mod toml;

use std::fs;
use std::path::Path;

use checks::{
    check_all, check_app_and_build, check_non_root, check_port,
    check_private_has_no_public_services, check_process, check_state_dir, check_vm, Parsed,
    DOCKERFILE, FLY, PRIVATE,
};
use dockerfile::parse_dockerfile;
use toml::{parse_toml, Value};

struct Sources {
    fly: String,
    private: String,
    docker: String,
}

fn sources() -> Sources {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| {
        fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
    };
    Sources {
        fly: read(FLY),
        private: read(PRIVATE),
        docker: read(DOCKERFILE),
    }
}

fn assert_clean(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "deployment files disagree:\n  - {}",
        problems.join("\n  - ")
    );
}

/// Runs one check on the real files.
fn run_one(check: fn(&Parsed) -> Vec<String>) -> Vec<String> {
    let s = sources();
    let fly = parse_toml(&s.fly).unwrap_or_else(|e| panic!("{FLY}: {e}"));
    let private = parse_toml(&s.private).unwrap_or_else(|e| panic!("{PRIVATE}: {e}"));
    let runtime = parse_dockerfile(&s.docker)
        .unwrap_or_else(|e| panic!("{DOCKERFILE}: {e}"))
        .pop()
        .unwrap();
    check(&Parsed::new(fly, private, runtime))
}

#[test]
fn deploy_files_are_consistent() {
    let s = sources();
    assert_clean(check_all(&s.fly, &s.private, &s.docker));
}

/// One `#[test]` per check, each running that check alone on the real files.
macro_rules! clean_on_real_files {
    ($($name:ident => $check:ident,)*) => {
        $(
            #[test]
            fn $name() {
                assert_clean(run_one($check));
            }
        )*
    };
}

clean_on_real_files! {
    process_command_is_identical_everywhere => check_process,
    port_agrees_everywhere => check_port,
    state_dir_is_the_volume_everywhere => check_state_dir,
    private_variant_has_no_public_services => check_private_has_no_public_services,
    app_names_and_dockerfile_match => check_app_and_build,
    vm_memory_is_small => check_vm,
    image_runs_as_non_root => check_non_root,
}

/// Replaces exactly one occurrence (the edit must hit, or the negative test proves nothing).
fn edit(src: &str, from: &str, to: &str) -> String {
    assert!(src.contains(from), "test setup: {from:?} not found");
    src.replacen(from, to, 1)
}

fn assert_reported(problems: &[String], needles: &[&str]) {
    assert!(!problems.is_empty(), "checker passed an inconsistent copy");
    for needle in needles {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}; got:\n  - {}",
            problems.join("\n  - ")
        );
    }
}

#[test]
fn rejects_port_3001_in_fly_toml() {
    let s = sources();
    let fly = edit(&s.fly, "--port 3000", "--port 3001");
    let problems = check_all(&fly, &s.private, &s.docker);
    assert_reported(&problems, &["3001", FLY]);
}

#[test]
fn rejects_port_mismatch_in_an_inline_copy() {
    // Self-contained: does not depend on the real files at all.
    let fly = r#"
app = "x"
[build]
  dockerfile = "Dockerfile.slim"
[env]
  CLAWDBOT_STATE_DIR = "/data"
[processes]
  app = "moltbot gateway --allow-unconfigured --port 3001 --bind lan"
[http_service]
  internal_port = 3000
  processes = ["app"]
[[vm]]
  memory = "512mb"
[mounts]
  source = "v"
  destination = "/data"
"#;
    let private = fly.split("[http_service]").next().unwrap().to_string()
        + "[[vm]]\n  memory = \"512mb\"\n[mounts]\n  source = \"v\"\n  destination = \"/data\"\n";
    let docker = "FROM rust AS builder\nRUN cargo build\nFROM gcr.io/distroless/cc-debian12:nonroot\n\
                  ENV CLAWDBOT_STATE_DIR=/data\nVOLUME /data\nUSER nonroot\nEXPOSE 3000\n\
                  CMD [\"moltbot\", \"gateway\", \"--allow-unconfigured\", \"--port\", \"3001\", \"--bind\", \"lan\"]\n";
    let problems = check_all(fly, &private, docker);
    assert_reported(&problems, &["internal_port = 3000", "EXPOSE = 3000"]);
    // Fixing the two 3000s makes it clean, so the checker is not just always failing.
    let fixed_fly = fly.replace("internal_port = 3000", "internal_port = 3001");
    let fixed_docker = docker.replace("EXPOSE 3000", "EXPOSE 3001");
    assert_clean(check_all(&fixed_fly, &private, &fixed_docker));
}

#[test]
fn rejects_command_drift_between_files() {
    let s = sources();
    let private = edit(&s.private, "--bind lan", "--bind loopback");
    assert_reported(
        &check_all(&s.fly, &private, &s.docker),
        &[PRIVATE, "--bind lan", "differs from"],
    );
}

#[test]
fn rejects_public_service_in_private_toml() {
    let s = sources();
    let private = format!("{}\n[http_service]\n  internal_port = 3000\n", s.private);
    assert_reported(
        &check_all(&s.fly, &private, &s.docker),
        &[PRIVATE, "[http_service]"],
    );
    let private = format!("{}\n[[services]]\n  internal_port = 3000\n", s.private);
    assert_reported(
        &check_all(&s.fly, &private, &s.docker),
        &[PRIVATE, "[services]"],
    );
}

#[test]
fn rejects_state_dir_mismatch() {
    let s = sources();
    let docker = edit(
        &s.docker,
        "ENV CLAWDBOT_STATE_DIR=/data",
        "ENV CLAWDBOT_STATE_DIR=/state",
    );
    assert_reported(
        &check_all(&s.fly, &s.private, &docker),
        &[DOCKERFILE, "/state"],
    );
    let fly = edit(
        &s.fly,
        "destination = \"/data\"",
        "destination = \"/mnt/data\"",
    );
    assert_reported(&check_all(&fly, &s.private, &s.docker), &[FLY, "/mnt/data"]);
}

#[test]
fn rejects_big_vm_root_user_and_app_mismatch() {
    let s = sources();
    let fly = edit(&s.fly, "memory = \"512mb\"", "memory = \"2048mb\"");
    assert_reported(&check_all(&fly, &s.private, &s.docker), &[FLY, "2048 MB"]);
    let docker = edit(&s.docker, "USER nonroot", "USER root");
    assert_reported(
        &check_all(&s.fly, &s.private, &docker),
        &[DOCKERFILE, "root"],
    );
    let private = edit(&s.private, "app = \"my-moltbot\"", "app = \"other-app\"");
    assert_reported(&check_all(&s.fly, &private, &s.docker), &["other-app"]);
}

#[test]
fn rejects_entrypoint_split() {
    let s = sources();
    let docker = edit(
        &s.docker,
        "CMD [\"moltbot\", \"gateway\",",
        "ENTRYPOINT [\"moltbot\"]\nCMD [\"gateway\",",
    );
    assert_reported(&check_all(&s.fly, &s.private, &docker), &["ENTRYPOINT"]);
}

#[test]
fn toml_parser_basics() {
    let doc = parse_toml(
        "a = 'x' # c\n[t]\n  s = \"q#\\\"z\"\n  n = 1_000\n  b = true\n  arr = [\"a\", 'b',\n   \"c\"]\n[[t.sub]]\n  k = 1\n",
    )
    .unwrap();
    assert_eq!(doc.get_str("", "a"), Some("x"));
    assert_eq!(doc.get_str("t", "s"), Some("q#\"z"));
    assert_eq!(doc.get("t", "n"), Some(&Value::Int(1000)));
    assert_eq!(doc.get("t", "b"), Some(&Value::Bool(true)));
    assert_eq!(
        doc.get("t", "arr"),
        Some(&Value::Array(vec![
            Value::Str("a".into()),
            Value::Str("b".into()),
            Value::Str("c".into())
        ]))
    );
    assert!(doc.has_table_tree("t") && doc.table("t.sub").unwrap().is_array);
    assert!(parse_toml("[x]\na = 1\na = 2\n").is_err());
    assert!(parse_toml("just words\n").is_err());
}
