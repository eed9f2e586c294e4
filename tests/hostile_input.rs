//! Hostile input, fuzzed with proptest (bounded: `PTEROBOX_FUZZ_CASES` cases per target, 256 by
//! default; raise it to fuzz longer):
//! - manifests through `pterobox check` and the webhook's validation: mutated examples (fields
//!   removed, retyped, huge, odd quantities and templates) and arbitrary YAML text. No panic, no hang,
//!   and every rejection names a field.
//! - the panel clients' response decoding, both flavors, over real HTTP: arbitrary bytes, arbitrary
//!   JSON, mutated and truncated real responses, wrong statuses, huge pages and endless pagination.
//!   A typed error (or a value), never a panic or a hang.

mod support;

use support::panel::AllServers as _;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use pterobox::check::{self, Document, Verdict};
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer};
use pterobox::panel::{self, HttpSettings, Panel, PanelError};
use pterobox::webhook::review::{self, Decision};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cases() -> u32 {
    std::env::var("PTEROBOX_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

const TRICKY: &[&str] = &[
    "",
    "0",
    "-1",
    "1",
    "1Gi",
    "0Gi",
    "-1Gi",
    "1.5",
    "1e400",
    "1e-400",
    "9999999999999999999999Ei",
    "18446744073709551616",
    "1.5m",
    "NaN",
    "inf",
    "1Gi ",
    " 1Gi",
    "1gi",
    "1GB",
    "0.0001m",
    "١٢",
    "%owner_username%",
    "%unknown%",
    "%server_name",
    "%%",
    "${HOME}",
    "a\u{0}b",
    "😀",
    "30100-30000",
    "65535-65536",
    "0-0",
    "1-65535",
    "abc-def",
    "2026-13-45T00:00:00Z",
    "2026-11-24T10:00:00Z",
    "1h",
    "-5m",
    "0s",
    "10s",
    "99999999h",
    "Pterodactyl",
    "Wisp",
    "http://",
    "https://127.0.0.1:1",
    "ftp://x",
    "paper",
    "basic",
    "default",
    "kube-system",
    "DNS_Label",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop::sample::select(TRICKY).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        (0usize..3000).prop_map(|n| Value::from("x".repeat(n))),
    ]
}

const KEYS: &[&str] = &[
    "spec",
    "metadata",
    "name",
    "namespace",
    "memory",
    "disk",
    "cpu",
    "servers",
    "budget",
    "resources",
    "eggs",
    "egg",
    "nest",
    "box",
    "panelRef",
    "owner",
    "email",
    "data",
    "attributes",
    "object",
    "meta",
    "pagination",
    "total_pages",
    "total",
    "id",
    "external_id",
    "limits",
    "container",
    "installed",
    "status",
    "relationships",
    "allocations",
    "port",
    "ip",
    "user",
    "node",
    "allocation",
    "feature_limits",
    "errors",
    "code",
    "detail",
    "source",
    "field",
    "variables",
    "env_variable",
    "rules",
    "docker_images",
    "startup",
    "suspended",
    "uuid",
];

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// One change to a JSON document, at the `at`-th of its paths (modulo their number).
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Set(usize, Value),
    Add(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (any::<usize>(), prop::sample::select(KEYS), json_value()).prop_map(|(i, k, v)| Mutation::Add(i, k.into(), v)),
    ]
}

/// Every JSON pointer in `v` (the root excluded).
fn paths(v: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => {
            m.iter().map(|(k, c)| (format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), c)).collect()
        }
        Value::Array(a) => a.iter().enumerate().map(|(i, c)| (format!("{at}/{i}"), c)).collect(),
        _ => return,
    };
    for (p, c) in children {
        out.push(p.clone());
        paths(c, p, out);
    }
}

fn apply(doc: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(doc, String::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let pick = |i: usize| all[i % all.len()].clone();
    match m {
        Mutation::Remove(i) => {
            let p = pick(*i);
            let (parent, last) = p.rsplit_once('/').unwrap_or(("", ""));
            match doc.pointer_mut(parent) {
                Some(Value::Object(o)) => drop(o.remove(&last.replace("~1", "/").replace("~0", "~"))),
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < a.len()
                    {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
        Mutation::Set(i, v) => {
            if let Some(slot) = doc.pointer_mut(&pick(*i)) {
                *slot = v.clone();
            }
        }
        Mutation::Add(i, k, v) => match doc.pointer_mut(&pick(*i)) {
            Some(Value::Object(o)) => drop(o.insert(k.clone(), v.clone())),
            Some(Value::Array(a)) => a.push(v.clone()),
            _ => {}
        },
    }
}

fn examples() -> Vec<Document> {
    let mut docs = Vec::new();
    for entry in std::fs::read_dir("examples").expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("example");
            docs.extend(check::parse(&path.display().to_string(), &text).expect("the examples parse"));
        }
    }
    docs
}

/// Whether a rejection names what it is about: a field path, the document's identity, or (for a
/// quota message) the box and its resources.
fn names_a_field(message: &str) -> bool {
    let field = ["spec", "metadata", "status", "apiVersion", "kind"]
        .iter()
        .any(|root| [".", ":", "["].iter().any(|next| message.contains(&format!("{root}{next}"))));
    field || message.contains("exceeded budget of box")
}

fn decision_names_a_field(d: &Decision) -> Result<(), TestCaseError> {
    if let Decision::Deny { message } = d {
        prop_assert!(names_a_field(message), "a denial that names no field: {message}");
    }
    Ok(())
}

#[test]
fn check_and_the_webhook_survive_hostile_manifests() {
    let base = examples();
    let by_kind = |kind: &str| base.iter().find(|d| d.value["kind"] == kind).map(|d| d.value.clone()).expect(kind);
    let gbox: GameBox = serde_json::from_value(by_kind("GameBox")).expect("box");
    let gpanel: GamePanel = serde_json::from_value(by_kind("GamePanel")).expect("panel");
    let gserver: GameServer = serde_json::from_value(by_kind("GameServer")).expect("server");
    let n = base.len();
    let strategy = prop::collection::vec((0..n, mutation()), 1..6);
    let started = Instant::now();
    let rejections = std::cell::Cell::new(0u64);
    runner(cases())
        .run(&strategy, |mutations| {
            let mut docs = base.clone();
            for (i, m) in &mutations {
                apply(&mut docs[*i].value, m);
            }
            let report = check::check(&docs);
            let _ = report.render();
            for p in &report.problems {
                prop_assert!(names_a_field(p), "a problem that names no field: {p}");
            }
            for row in &report.rows {
                if let Verdict::Rejected(m) | Verdict::Invalid(m) = &row.verdict {
                    prop_assert!(names_a_field(m), "a verdict that names no field: {m}");
                }
            }
            for (i, _) in &mutations {
                let (doc, original) = (&docs[*i].value, &base[*i].value);
                for verdict in [review::schema(doc, None), review::schema(doc, Some(original))].iter().flatten() {
                    decision_names_a_field(verdict)?;
                }
                if let Ok(s) = serde_json::from_value::<GameServer>(doc.clone()) {
                    decision_names_a_field(&review::review_server(&s, None, Some(&gbox), &[&gserver]))?;
                    decision_names_a_field(&review::review_server(&s, Some(&gserver), Some(&gbox), &[]))?;
                }
                if let Ok(b) = serde_json::from_value::<GameBox>(doc.clone()) {
                    decision_names_a_field(&review::review_box(&b, Some(&gpanel), &[&gserver]))?;
                }
            }
            rejections.set(rejections.get() + report.problems.len() as u64);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let rejections = rejections.get();
    support::report(&format!(
        "check + webhook: {} cases, {rejections} rejections, {:.1}s\n",
        cases(),
        started.elapsed().as_secs_f64()
    ));
    assert!(rejections > 0, "the mutations never produced an invalid manifest");
}

#[test]
fn check_survives_hostile_yaml_text() {
    let texts: Vec<String> = std::fs::read_dir("examples")
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let truncated = (0..texts.len(), any::<prop::sample::Index>())
        .prop_map(move |(i, cut)| texts[i].chars().take(cut.index(texts[i].chars().count() + 1)).collect::<String>());
    let strategy = prop_oneof![truncated, "\\PC{0,400}", "([-:{}\\[\\]&*!|>'\"%@` \n]|[a-z]{1,5}){0,80}"];
    runner(cases())
        .run(&strategy, |text| {
            if let Ok(docs) = check::parse("fuzz.yaml", &text) {
                let _ = check::check(&docs).render();
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // A billion laughs: refused or bounded, quickly.
    let mut bomb = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (i, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"]) {
        bomb.push_str(&format!(
            "{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    let started = Instant::now();
    let _ = check::parse("bomb.yaml", &bomb).map(|docs| check::check(&docs));
    assert!(started.elapsed() < Duration::from_secs(10), "a YAML alias bomb took {:?}", started.elapsed());
}

/// What the fake panel answers next.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    /// The status, size and start of the body (a whole huge page would drown the test output).
    fn summary(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        format!("{} with {} bytes: {}…", self.status, self.body.len(), text.chars().take(300).collect::<String>())
    }
}

/// A loopback HTTP server that answers every request with the current `Answer`.
async fn fake_panel(answer: Arc<Mutex<Answer>>) -> String {
    fake_panel_counting(answer, Arc::default()).await
}

/// As `fake_panel`, counting the requests (one per connection: every answer closes it).
async fn fake_panel_counting(answer: Arc<Mutex<Answer>>, requests: Arc<std::sync::atomic::AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = answer.lock().map(|a| a.clone()).unwrap_or(Answer { status: 500, body: Vec::new() });
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                // Read the head and whatever body the client sends with it (writes are small).
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 0\r\nconnection: close\r\n\r\n",
                    answer.status,
                    answer.body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&answer.body).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Real responses of a simulated panel of `flavor`: a server, a page of servers, users, an egg, a 422.
async fn real_bodies(flavor: Flavor) -> Vec<Value> {
    let p = support::panel::start(flavor, |_| {}).await;
    let user = p
        .client
        .create_user(&panel::NewUser {
            email: "fuzz@example.com".into(),
            username: Some("fuzz".into()),
            first_name: "F".into(),
            last_name: "Z".into(),
            external_id: "fuzz".into(),
        })
        .await
        .expect("user");
    let new = json!({"name": "s", "user": user.id.parse::<u64>().unwrap_or(1), "egg": 3, "docker_image": "ghcr.io/pterodactyl/yolks:java_21",
                     "startup": "java -jar {{SERVER_JARFILE}}", "environment": {"SERVER_JARFILE": "server.jar", "MINECRAFT_VERSION": "latest", "BUILD_NUMBER": "latest"},
                     "limits": {"memory": 512, "swap": 0, "disk": 1024, "io": 500, "cpu": 100},
                     "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
                     "deploy": {"locations": [1], "dedicated_ip": false, "port_range": []}, "external_id": "fuzz-1"});
    let accept = match flavor {
        Flavor::Pterodactyl | Flavor::Pelican => "application/json",
        Flavor::Wisp => "application/vnd.wisp.v1+json",
    };
    let mut new = new;
    if flavor == Flavor::Wisp {
        new["nest"] = json!(1); // Wisp takes the nest with the egg
    }
    let created = reqwest::Client::new()
        .post(format!("{}/api/application/servers", p.sim.url))
        .bearer_auth(support::panel::SIM_KEY)
        .header("Accept", accept)
        .json(&new)
        .send()
        .await
        .expect("create");
    let created: Value = created.json().await.expect("created json");
    assert!(created.get("attributes").is_some(), "the real create failed: {created}");
    let mut bodies = vec![created];
    for path in [
        "/servers?include=allocations",
        "/servers/1?include=allocations",
        "/users",
        "/nests/1/eggs/3?include=variables",
        "/servers/999",
    ] {
        bodies.push(p.raw_get(path).await.2);
    }
    bodies
}

fn body_strategy(real: Vec<Value>) -> impl Strategy<Value = Answer> {
    let statuses =
        prop::sample::select(vec![200u16, 200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 503]);
    let texts: Vec<String> = real.iter().map(Value::to_string).collect();
    let real_for_mutation = real.clone();
    let mutated = (0..real_for_mutation.len(), prop::collection::vec(mutation(), 1..4)).prop_map(move |(i, ms)| {
        let mut v = real_for_mutation[i].clone();
        for m in &ms {
            apply(&mut v, m);
        }
        v.to_string().into_bytes()
    });
    let truncated = (0..texts.len(), any::<prop::sample::Index>())
        .prop_map(move |(i, cut)| texts[i].as_bytes()[..cut.index(texts[i].len() + 1)].to_vec());
    let page = real[1].clone();
    let huge = (0usize..3000, prop::sample::select(vec![1u64, 2, 1_000, u32::MAX as u64, u64::MAX])).prop_map(
        move |(n, pages)| {
            let mut v = page.clone();
            let item = v["data"][0].clone();
            v["data"] = Value::Array(vec![item; n]);
            v["meta"]["pagination"]["total_pages"] = json!(pages);
            v.to_string().into_bytes()
        },
    );
    let body = prop_oneof![
        3 => mutated,
        2 => truncated,
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => huge,
    ];
    (statuses, body).prop_map(|(status, body)| Answer { status, body })
}

async fn every_read(client: &dyn Panel) -> Vec<Result<String, PanelError>> {
    vec![
        client.server("1").await.map(|s| s.id.to_string()),
        client.server_by_external_id("fuzz-1").await.map(|s| format!("{s:?}")),
        client.servers_page(1, 100).await.map(|p| p.items.len().to_string()),
        client.all_servers().await.map(|s| s.len().to_string()),
        client.user_by_external_id("fuzz").await.map(|u| format!("{u:?}")),
        client.user_by_email("fuzz@example.com").await.map(|u| format!("{u:?}")),
        client.egg("1", "3").await.map(|e| e.id),
        client.nests().await.map(|n| n.len().to_string()),
        client.delete_server("1").await.map(|()| String::new()),
        client.suspend("1").await.map(|()| String::new()),
        client.user("1").await.map(|u| format!("{u:?}")),
        client.nodes().await.map(|n| n.len().to_string()),
        client.described_servers(1, 100).await.map(|p| p.items.len().to_string()),
    ]
}

async fn panel_decoding_survives_hostile_responses(flavor: Flavor) {
    let real = real_bodies(flavor).await;
    let answer = Arc::new(Mutex::new(Answer { status: 200, body: Vec::new() }));
    let url = fake_panel(answer.clone()).await;
    let mut settings = HttpSettings::new(&url, panel::ApiKey::new(support::panel::SIM_KEY), 1_000_000);
    settings.retry_backoff = Duration::from_millis(1);
    settings.rate_limit_retries = 1;
    let client = panel::connect(flavor, settings).expect("client");
    let strategy = body_strategy(real);
    let cases = cases() / 4;
    let mut answers = Vec::new();
    let mut runner = runner(cases);
    // Generate the cases first (proptest's runner is synchronous), then send each over HTTP.
    for _ in 0..cases {
        answers.push(strategy.new_tree(&mut runner).expect("a case").current());
    }
    let started = Instant::now();
    let (mut ok, mut errors) = (0u64, 0u64);
    for a in answers {
        *answer.lock().expect("answer") = a.clone();
        let results = tokio::time::timeout(Duration::from_secs(60), every_read(client.as_ref()))
            .await
            .unwrap_or_else(|_| panic!("a hostile answer made the client hang: {}", a.summary()));
        for r in results {
            match r {
                Ok(_) => ok += 1,
                Err(e) => {
                    errors += 1;
                    let text = e.to_string();
                    assert!(!text.is_empty() && !text.contains(support::panel::SIM_KEY), "{e:?}");
                }
            }
        }
    }
    support::report(&format!(
        "{flavor:?} panel decoding: {cases} hostile answers x {} calls: {ok} values, {errors} typed errors, {:.1}s\n",
        (ok + errors) / cases.max(1) as u64,
        started.elapsed().as_secs_f64()
    ));
    assert!(errors > 0 && ok > 0, "the answers were all accepted or all refused: not a fuzz");
}

#[tokio::test]
async fn pterodactyl_panel_decoding_survives_hostile_responses() {
    panel_decoding_survives_hostile_responses(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_panel_decoding_survives_hostile_responses() {
    panel_decoding_survives_hostile_responses(Flavor::Wisp).await;
}

/// The two list limits, exactly: a page with more items than asked for is refused, naming the
/// counts; a panel that claims endless pages is followed for `MAX_LIST_PAGES` requests, then refused.
async fn list_limits_hold(flavor: Flavor) {
    let page = real_bodies(flavor).await[1].clone();
    let with_items = |n: usize, pages: u64| {
        let mut v = page.clone();
        v["data"] = Value::Array(vec![page["data"][0].clone(); n]);
        v["meta"]["pagination"]["total_pages"] = json!(pages);
        Answer { status: 200, body: v.to_string().into_bytes() }
    };
    let answer = Arc::new(Mutex::new(with_items(101, 1)));
    let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let url = fake_panel_counting(answer.clone(), requests.clone()).await;
    let client =
        panel::connect(flavor, HttpSettings::new(&url, panel::ApiKey::new(support::panel::SIM_KEY), 1_000_000))
            .expect("client");

    let err = client.servers_page(1, 100).await.expect_err("a page larger than asked for");
    assert!(err.to_string().contains("returned 101 items for per_page=100"), "{err}");

    *answer.lock().expect("answer") = with_items(1, u64::from(u32::MAX));
    requests.store(0, std::sync::atomic::Ordering::SeqCst);
    let err = client.all_servers().await.expect_err("endless pagination");
    assert!(err.to_string().contains(&format!("more than {} pages", panel::MAX_LIST_PAGES)), "{err}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), u64::from(panel::MAX_LIST_PAGES));
}

#[tokio::test]
async fn pterodactyl_list_limits_hold() {
    list_limits_hold(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_list_limits_hold() {
    list_limits_hold(Flavor::Wisp).await;
}
