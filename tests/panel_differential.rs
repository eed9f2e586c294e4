//! panel-sim calibrated against the real panel: the same requests go to `pterobox panel-sim`
//! (Pterodactyl) and to the upstream panel of the real-panel layer, each from the same starting
//! state (a user and a server made by the same requests), and their answers are compared — status,
//! error codes, a 422's rules and source fields, and the shape of the body (keys and JSON types;
//! ids, uuids, times and texts are values, not shape). Every route and method the simulator serves
//! is asked, with valid and invalid bodies, a key without a permission, includes, filters, sorts,
//! paging past the end, unknown routes and methods and other content types.
//!
//! Every difference is either fixed in the simulator or listed, with its reason, in
//! `tests/fixtures/panel-sim-differences.yaml`; an entry that no longer differs fails too, so the
//! list stays true. The table of every case is printed. To calibrate against another panel version:
//! point the real-panel layer at it (`PTEROBOX_REAL_PANEL_URL` and `_KEY`, or a newer bundle in
//! `../shared/realpanel`) and run `cargo test --test panel_differential -- --nocapture`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::Command;

use pterobox::crd::Flavor;
use serde_json::{Map, Value, json};
use support::real::{RealPanel, exclusive, resettable_panel};

/// The keys a case may use: every permission, none on servers, or read only on servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Full,
    NoServers,
    ReadServers,
    Wrong,
}

/// One side of the comparison: a base URL and its keys, and the ids of its things.
struct Side {
    name: &'static str,
    api: String,
    keys: BTreeMap<Key, String>,
    ids: BTreeMap<&'static str, String>,
}

/// One request.
struct Case {
    name: &'static str,
    method: &'static str,
    /// With `{user}`, `{server}`, `{nest}`, `{egg}`, `{location}`, `{node}`.
    path: &'static str,
    body: Option<Value>,
    key: Key,
    accept: &'static str,
    /// A body sent as is, with this content type (instead of `body` as JSON).
    raw: Option<(&'static str, &'static str)>,
}

fn case(name: &'static str, method: &'static str, path: &'static str) -> Case {
    Case { name, method, path, body: None, key: Key::Full, accept: "application/json", raw: None }
}

impl Case {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn key(mut self, key: Key) -> Self {
        self.key = key;
        self
    }
    fn accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }
    fn raw(mut self, content_type: &'static str, body: &'static str) -> Self {
        self.raw = Some((content_type, body));
        self
    }
}

/// The body of a valid create, with placeholders.
fn server_body(external_id: &str) -> Value {
    json!({"name": "diff", "user": "{user}", "egg": "{egg}", "external_id": external_id,
           "docker_image": "ghcr.io/pterodactyl/yolks:java_21", "startup": "java -jar {{SERVER_JARFILE}}",
           "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
           "limits": {"memory": 512, "swap": 0, "disk": 1024, "io": 500, "cpu": 50},
           "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
           "deploy": {"locations": ["{location}"], "dedicated_ip": false, "port_range": []}})
}

fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    if let Some(slot) = body.pointer_mut(pointer) {
        *slot = value;
    }
    body
}

fn without(mut body: Value, field: &str) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.remove(field);
    }
    body
}

/// Every case, in the order they are sent (writes last, deletes at the very end).
fn cases() -> Vec<Case> {
    let user = json!({"email": "erin@example.com", "username": "erin", "first_name": "Erin", "last_name": "E"});
    let build = json!({"allocation": "{allocation}", "memory": 768, "swap": 0, "disk": 1024, "io": 500, "cpu": 50,
                       "feature_limits": {"databases": 0, "allocations": 1, "backups": 0}});
    let details = json!({"name": "renamed", "user": "{user}", "external_id": "diff-1", "description": "d"});
    let startup = json!({"startup": "java -jar server.jar", "egg": "{egg}", "image": "ghcr.io/pterodactyl/yolks:java_21",
                         "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"}, "skip_scripts": false});
    vec![
        // Reads.
        case("users: list", "GET", "/users"),
        case("users: filter by email", "GET", "/users?filter[email]=dave"),
        case("users: filter by external id", "GET", "/users?filter[external_id]=diff-user"),
        case("users: unknown filter", "GET", "/users?filter[password]=x"),
        case("users: sort by -id", "GET", "/users?sort=-id"),
        case("users: unknown sort", "GET", "/users?sort=email"),
        case("users: page past the end", "GET", "/users?page=9"),
        case("users: one", "GET", "/users/{user}"),
        case("users: one that does not exist", "GET", "/users/99999"),
        case("users: by external id", "GET", "/users/external/diff-user"),
        case("users: by external id that does not exist", "GET", "/users/external/nobody"),
        case("users: include servers", "GET", "/users/{user}?include=servers"),
        case("locations: list", "GET", "/locations"),
        case("locations: one", "GET", "/locations/{location}"),
        case("locations: include nodes", "GET", "/locations?include=nodes"),
        case("nodes: list", "GET", "/nodes"),
        case("nodes: one", "GET", "/nodes/{node}"),
        case("nodes: allocations", "GET", "/nodes/{node}/allocations"),
        case("nodes: allocations, one per page", "GET", "/nodes/{node}/allocations?per_page=1"),
        case("nests: list", "GET", "/nests"),
        case("nests: one", "GET", "/nests/{nest}"),
        case("nests: include eggs", "GET", "/nests?include=eggs"),
        case("eggs: of a nest", "GET", "/nests/{nest}/eggs"),
        case("eggs: one with variables", "GET", "/nests/{nest}/eggs/{egg}?include=variables"),
        case("eggs: one of another nest", "GET", "/nests/99999/eggs/{egg}"),
        case("servers: list", "GET", "/servers"),
        case("servers: include allocations", "GET", "/servers?include=allocations"),
        case("servers: include user and egg", "GET", "/servers?include=user,egg"),
        case("servers: unknown include", "GET", "/servers?include=pets"),
        case("servers: filter by external id", "GET", "/servers?filter[external_id]=diff-1"),
        case("servers: filter by name", "GET", "/servers?filter[name]=diff"),
        case("servers: unknown filter", "GET", "/servers?filter[memory]=1"),
        case("servers: sort by -id", "GET", "/servers?sort=-id"),
        case("servers: unknown sort", "GET", "/servers?sort=name"),
        case("servers: per_page 0", "GET", "/servers?per_page=0"),
        case("servers: page past the end", "GET", "/servers?page=9&per_page=1"),
        case("servers: one", "GET", "/servers/{server}"),
        case("servers: one with allocations", "GET", "/servers/{server}?include=allocations"),
        case("servers: one that does not exist", "GET", "/servers/99999"),
        case("servers: by external id", "GET", "/servers/external/diff-1"),
        case("servers: by external id that does not exist", "GET", "/servers/external/nobody"),
        // Keys, routes, methods, content.
        case("servers: a key without r_servers", "GET", "/servers").key(Key::NoServers),
        case("servers: a key that may only read them, writing", "POST", "/servers/{server}/suspend")
            .key(Key::ReadServers),
        case("servers: a key that may only read them, reading", "GET", "/servers/{server}").key(Key::ReadServers),
        case("a wrong key", "GET", "/servers").key(Key::Wrong),
        case("an unknown route", "GET", "/pets"),
        case("an unknown method", "PUT", "/servers"),
        case("DELETE on a collection", "DELETE", "/users"),
        case("a browser's Accept", "GET", "/servers").accept("text/html"),
        case("malformed JSON", "POST", "/users").raw("application/json", "{\"email\": "),
        case("a form instead of JSON", "POST", "/users").raw("application/x-www-form-urlencoded", "email=a%40b.c"),
        // User writes.
        case("users: create", "POST", "/users").body(user.clone()),
        case("users: create, empty", "POST", "/users").body(json!({})),
        case("users: create, e-mail taken", "POST", "/users").body(with(user.clone(), "/username", json!("erin2"))),
        case("users: create, not an e-mail", "POST", "/users").body(with(user.clone(), "/email", json!("nope"))),
        case("users: create, bad username", "POST", "/users").body(with(
            with(user.clone(), "/email", json!("x@example.com")),
            "/username",
            json!("-x-"),
        )),
        case("users: create, no last name", "POST", "/users")
            .body(without(with(user.clone(), "/email", json!("y@example.com")), "last_name")),
        case("users: update", "PATCH", "/users/{user}")
            .body(json!({"email": "dave@example.com", "username": "dave", "first_name": "Dave", "last_name": "D2"})),
        // Server writes.
        case("servers: create", "POST", "/servers").body(server_body("diff-2")),
        case("servers: create, empty", "POST", "/servers").body(json!({})),
        case("servers: create, external id taken", "POST", "/servers").body(server_body("diff-1")),
        case("servers: create, a variable missing", "POST", "/servers").body(with(
            server_body("diff-3"),
            "/environment",
            json!({"BUILD_NUMBER": "latest"}),
        )),
        case("servers: create, a variable against its rule", "POST", "/servers").body(with(
            server_body("diff-4"),
            "/environment/SERVER_JARFILE",
            json!("server.zip"),
        )),
        case("servers: create, negative memory", "POST", "/servers").body(with(
            server_body("diff-5"),
            "/limits/memory",
            json!(-1),
        )),
        case("servers: create, an egg that does not exist", "POST", "/servers").body(with(
            server_body("diff-6"),
            "/egg",
            json!(99999),
        )),
        case("servers: create, a user that does not exist", "POST", "/servers").body(with(
            server_body("diff-7"),
            "/user",
            json!(99999),
        )),
        case("servers: create, no deploy and no allocation", "POST", "/servers")
            .body(without(server_body("diff-8"), "deploy")),
        case("servers: create, no node has room", "POST", "/servers").body(with(
            server_body("diff-9"),
            "/limits/memory",
            json!(100_000_000),
        )),
        case("servers: create, no free port in the range", "POST", "/servers").body(with(
            server_body("diff-10"),
            "/deploy/port_range",
            json!(["40000-40010"]),
        )),
        case("servers: build", "PATCH", "/servers/{server}/build").body(build.clone()),
        case("servers: build, no allocation", "PATCH", "/servers/{server}/build")
            .body(without(build.clone(), "allocation")),
        case("servers: build, nested limits", "PATCH", "/servers/{server}/build").body(
            json!({"allocation": "{allocation}",
            "limits": {"memory": 640, "swap": 0, "disk": 1024, "io": 500, "cpu": 50},
            "feature_limits": {"databases": 0, "allocations": 1, "backups": 0}}),
        ),
        case("servers: build, no feature limits", "PATCH", "/servers/{server}/build")
            .body(without(build, "feature_limits")),
        case("servers: details", "PATCH", "/servers/{server}/details").body(details.clone()),
        case("servers: details, no name", "PATCH", "/servers/{server}/details").body(without(details.clone(), "name")),
        case("servers: details, empty description", "PATCH", "/servers/{server}/details").body(with(
            details,
            "/description",
            json!(""),
        )),
        case("servers: startup", "PATCH", "/servers/{server}/startup").body(startup.clone()),
        case("servers: startup, no egg", "PATCH", "/servers/{server}/startup").body(without(startup.clone(), "egg")),
        case("servers: startup, a variable missing", "PATCH", "/servers/{server}/startup").body(with(
            startup,
            "/environment",
            json!({"BUILD_NUMBER": "latest"}),
        )),
        case("servers: suspend", "POST", "/servers/{server}/suspend"),
        case("servers: suspend again", "POST", "/servers/{server}/suspend"),
        case("servers: unsuspend", "POST", "/servers/{server}/unsuspend"),
        case("servers: reinstall", "POST", "/servers/{server}/reinstall"),
        case("servers: suspend one that does not exist", "POST", "/servers/99999/suspend"),
        // Deletes, last.
        case("users: delete one who owns servers", "DELETE", "/users/{user}"),
        case("servers: delete", "DELETE", "/servers/{server}"),
        case("servers: delete again", "DELETE", "/servers/{server}"),
        case("servers: force delete one that does not exist", "DELETE", "/servers/99999/force"),
        case("users: delete", "DELETE", "/users/{user}"),
    ]
}

/// Replaces the placeholders of `side` in a path.
fn path_of(side: &Side, path: &str) -> String {
    side.ids.iter().fold(path.to_string(), |p, (k, v)| p.replace(&format!("{{{k}}}"), v))
}

/// Replaces every string that is a whole placeholder with the id (a JSON number when digits).
fn body_of(side: &Side, body: &Value) -> Value {
    match body {
        Value::String(s) => match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).and_then(|k| side.ids.get(k)) {
            Some(id) => id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n)),
            None => body.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|v| body_of(side, v)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), body_of(side, v))).collect()),
        other => other.clone(),
    }
}

/// What an answer is, for the comparison.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    status: u16,
    /// `errors[].code`, in order.
    codes: Vec<String>,
    /// A 422's (source field, rule) pairs.
    rules: BTreeSet<(String, String)>,
    /// Keys and JSON types; `object` values kept (they name what a body is).
    shape: Value,
}

fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("object", Value::String(s)) => (k.clone(), json!(format!("object {s}"))),
                    // Maps whose keys are data (an egg's images, config files, a server's
                    // variables), not shape.
                    ("docker_images" | "files" | "find" | "environment" | "startup", Value::Object(_)) => {
                        (k.clone(), json!("map"))
                    }
                    // An error's text is not its shape.
                    ("errors", _) => (k.clone(), json!("errors")),
                    _ => (k.clone(), shape(v)),
                })
                .collect::<Map<_, _>>(),
        ),
    }
}

/// Where two shapes differ, as paths.
fn shape_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => shape_diff(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k} only on the real panel")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k} only on panel-sim"));
            }
        }
        (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
            (Some(v), Some(w)) => shape_diff(&format!("{path}[]"), v, w, out),
            (None, None) => {}
            _ => out.push(format!("{path}: {} items on the real panel, {} on panel-sim", x.len(), y.len())),
        },
        _ if a != b => out.push(format!("{path}: {a} on the real panel, {b} on panel-sim")),
        _ => {}
    }
}

async fn send(side: &Side, case: &Case) -> Observed {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let url = format!("{}{}", side.api, path_of(side, case.path));
    let mut request = client
        .request(case.method.parse().expect("method"), url)
        .bearer_auth(&side.keys[&case.key])
        .header("Accept", case.accept);
    if let Some((content_type, raw)) = case.raw {
        request = request.header("Content-Type", content_type).body(raw);
    } else if let Some(body) = &case.body {
        request = request.json(&body_of(side, body));
    }
    let response = request.send().await.expect("a request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    let codes = errors.iter().filter_map(|e| e["code"].as_str().map(str::to_string)).collect();
    let rules = errors
        .iter()
        .filter_map(|e| {
            Some((e["meta"]["source_field"].as_str()?.to_string(), e["meta"]["rule"].as_str()?.to_string()))
        })
        .collect();
    Observed { status, codes, rules, shape: shape(&body) }
}

/// A user and a server on `side`, made by the same requests; the ids of what the cases name.
async fn prepare(side: &mut Side, paper: (String, String)) {
    let full = side.keys[&Key::Full].clone();
    let client = reqwest::Client::new();
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut r = client
            .request(method.parse().expect("method"), format!("{}{path}", side.api))
            .bearer_auth(&full)
            .header("Accept", "application/json");
        if let Some(body) = body {
            r = r.json(&body);
        }
        r.send()
    };
    side.ids.insert("nest", paper.0);
    side.ids.insert("egg", paper.1);
    let location = call("GET", "/locations", None).await.expect("locations").json::<Value>().await.expect("JSON");
    side.ids.insert("location", location["data"][0]["attributes"]["id"].to_string());
    let nodes = call("GET", "/nodes", None).await.expect("nodes").json::<Value>().await.expect("JSON");
    side.ids.insert("node", nodes["data"][0]["attributes"]["id"].to_string());
    let user = json!({"email": "dave@example.com", "username": "dave", "first_name": "Dave", "last_name": "D",
                      "external_id": "diff-user"});
    let user = call("POST", "/users", Some(user)).await.expect("user").json::<Value>().await.expect("JSON");
    side.ids.insert("user", user["attributes"]["id"].to_string());
    let body = body_of(side, &server_body("diff-1"));
    let server = call("POST", "/servers", Some(body)).await.expect("server").json::<Value>().await.expect("JSON");
    let id = server["attributes"]["id"].to_string();
    assert!(id.parse::<u64>().is_ok(), "{}: the server was not made: {server}", side.name);
    side.ids.insert("allocation", server["attributes"]["allocation"].to_string());
    // Both sides answer the cases with the server installed (the installs take about 2 s).
    for _ in 0..100 {
        let now =
            call("GET", &format!("/servers/{id}"), None).await.expect("server").json::<Value>().await.expect("JSON");
        if now["attributes"]["status"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    side.ids.insert("server", id);
}

/// An application key of the real panel's admin with `permissions` (the panel's own
/// `KeyCreationService`, run with its PHP; `reset.sh` removes it again).
fn real_key(panel: &RealPanel, permissions: &[(&str, u8)]) -> String {
    let dir = panel.work_dir().expect("the real panel's work directory").join("panel");
    let permissions: Vec<String> = permissions.iter().map(|(p, v)| format!("'{p}' => {v}")).collect();
    let php = format!(
        "require 'vendor/autoload.php'; $app = require 'bootstrap/app.php'; \
         $app->make(Illuminate\\Contracts\\Console\\Kernel::class)->bootstrap(); \
         $key = $app->make(Pterodactyl\\Services\\Api\\KeyCreationService::class) \
           ->setKeyType(Pterodactyl\\Models\\ApiKey::TYPE_APPLICATION) \
           ->handle(['user_id' => 1, 'memo' => 'differential test', 'allowed_ips' => []], [{}]); \
         echo $key->identifier . decrypt($key->token);",
        permissions.join(", ")
    );
    let out = Command::new("env")
        .args(["-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "php", "-r", &php])
        .current_dir(&dir)
        .output()
        .expect("run the panel's PHP");
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.starts_with("ptla_"), "no key: {}{}", key, String::from_utf8_lossy(&out.stderr));
    key
}

/// The allowlist: (case, aspect) → reason.
fn allowed(path: &str) -> BTreeMap<(String, String), String> {
    let text = std::fs::read_to_string(path).expect("the allowlist");
    let entries: Vec<Value> = serde_yaml::from_str(&text).expect("the allowlist is YAML");
    let mut out = BTreeMap::new();
    for e in entries {
        let case = e["case"].as_str().expect("case").to_string();
        let reason = e["reason"].as_str().expect("reason").to_string();
        assert!(!reason.trim().is_empty(), "{case}: an allowed difference needs its reason");
        for aspect in e["differs"].as_array().expect("differs").iter().filter_map(Value::as_str) {
            out.insert((case.clone(), aspect.to_string()), reason.clone());
        }
    }
    out
}

#[tokio::test]
async fn panel_sim_answers_as_the_real_panel_does() {
    let Some(panel) = resettable_panel("panel_sim_answers_as_the_real_panel_does") else { return };
    let _lock = exclusive().await;
    panel.reset();
    let keys = BTreeMap::from([
        (Key::Full, panel.key.clone()),
        (Key::NoServers, real_key(&panel, &[("r_servers", 0)])),
        (Key::ReadServers, real_key(&panel, &[("r_servers", 1)])),
        (Key::Wrong, "ptla_WRONGKEYwrongkeyWRONGKEYwrongkeyWRONGKEYwr".to_string()),
    ]);
    let mut real = Side { name: "real", api: format!("{}/api/application", panel.url), keys, ids: BTreeMap::new() };
    prepare(&mut real, panel.egg("Paper").await).await;

    let sim = support::panel::start(Flavor::Pterodactyl, |c| c.install_delay = std::time::Duration::from_secs(2)).await;
    sim.add_key("ptla_differential_noservers_0000000000000000000", "admin", &[("r_servers", 0)]).await;
    sim.add_key("ptla_differential_readservers_00000000000000000", "admin", &[("r_servers", 1)]).await;
    let keys = BTreeMap::from([
        (Key::Full, support::panel::SIM_KEY.to_string()),
        (Key::NoServers, "ptla_differential_noservers_0000000000000000000".to_string()),
        (Key::ReadServers, "ptla_differential_readservers_00000000000000000".to_string()),
        (Key::Wrong, "ptla_WRONGKEYwrongkeyWRONGKEYwrongkeyWRONGKEYwr".to_string()),
    ]);
    let mut simulated =
        Side { name: "panel-sim", api: format!("{}/api/application", sim.sim.url), keys, ids: BTreeMap::new() };
    let (nest, egg) = ("1".to_string(), "3".to_string());
    prepare(&mut simulated, (nest, egg)).await;

    compare(&real, &simulated, cases(), "tests/fixtures/panel-sim-differences.yaml", "Pterodactyl v1.11.8").await;
}

/// Sends every case to both sides and compares the answers against the allowlist at `allowlist`;
/// prints the table and fails on a difference it does not explain or an entry that no longer differs.
async fn compare(real: &Side, simulated: &Side, cases: Vec<Case>, allowlist: &str, version: &str) {
    let allowed = allowed(allowlist);
    let mut used = BTreeSet::new();
    let mut table = format!("\npanel-sim against the real panel ({version}), case by case:\n");
    let mut unexplained = Vec::new();
    let (mut same, mut explained) = (0, 0);
    let total = cases.len();
    for case in cases {
        let (a, b) = (send(real, &case).await, send(simulated, &case).await);
        let mut aspects: Vec<(&str, String)> = Vec::new();
        if a.status != b.status {
            aspects.push(("status", format!("{} / {}", a.status, b.status)));
        }
        if a.codes != b.codes {
            aspects.push(("codes", format!("{:?} / {:?}", a.codes, b.codes)));
        }
        if a.rules != b.rules {
            aspects.push(("rules", format!("{:?} / {:?}", a.rules, b.rules)));
        }
        let mut paths = Vec::new();
        shape_diff("", &a.shape, &b.shape, &mut paths);
        if !paths.is_empty() && a.status == b.status {
            aspects.push(("shape", paths.join("; ")));
        }
        let route = format!("{} {}", case.method, case.path);
        if aspects.is_empty() {
            same += 1;
            let _ = writeln!(table, "  same       {route:<42} {}", case.name);
            continue;
        }
        for (aspect, detail) in &aspects {
            let key = (case.name.to_string(), aspect.to_string());
            match allowed.get(&key) {
                Some(reason) => {
                    used.insert(key);
                    let _ = writeln!(table, "  allowed    {route:<42} {} ({aspect}: {detail}) — {reason}", case.name);
                }
                None => {
                    let _ = writeln!(table, "  DIFFERENT  {route:<42} {} ({aspect}: {detail})", case.name);
                    unexplained.push(format!("{}: {aspect}: real / sim: {detail}", case.name));
                }
            }
        }
        explained +=
            usize::from(aspects.iter().all(|(a, _)| allowed.contains_key(&(case.name.to_string(), a.to_string()))));
    }
    let stale: Vec<&(String, String)> = allowed.keys().filter(|k| !used.contains(*k)).collect();
    let _ = writeln!(
        table,
        "  {total} cases: {same} answered alike, {explained} differ as the allowlist explains, {} differ unexplained; {} allowlist entries no longer differ",
        total - same - explained,
        stale.len()
    );
    support::report(&table);
    assert!(unexplained.is_empty(), "panel-sim answers otherwise than the real panel:\n{}", unexplained.join("\n"));
    assert!(stale.is_empty(), "allowlisted differences that are gone (remove them): {stale:?}");
}

// ---- Pelican ------------------------------------------------------------------------------------

/// The body of a valid Pelican create, with placeholders: the egg alone, `deploy` with tags.
fn pelican_server_body(external_id: &str) -> Value {
    json!({"name": "diff", "user": "{user}", "egg": "{egg}", "external_id": external_id,
           "docker_image": "ghcr.io/pterodactyl/yolks:java_21", "startup": "java -jar {{SERVER_JARFILE}}",
           "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
           "limits": {"memory": 512, "swap": 0, "disk": 1024, "io": 500, "cpu": 50},
           "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
           "deploy": {"tags": ["{tag}"], "locations": [], "dedicated_ip": false, "port_range": []}})
}

/// The cases of the routes and bodies the operator uses on Pelican, and what Pelican lacks.
fn pelican_cases() -> Vec<Case> {
    let build = json!({"allocation": "{allocation}", "memory": 768, "swap": 0, "disk": 1024, "io": 500, "cpu": 50,
                       "feature_limits": {"databases": 0, "allocations": 1, "backups": 0}});
    let details = json!({"name": "renamed", "user": "{user}", "external_id": "diff-1", "description": "d"});
    let startup = json!({"startup": "java -jar server.jar", "egg": "{egg}", "image": "ghcr.io/pterodactyl/yolks:java_21",
                         "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"}, "skip_scripts": false});
    let pterodactyl_deploy = json!({"locations": [1], "dedicated_ip": false, "port_range": []});
    let without_locations = json!({"tags": ["{tag}"], "dedicated_ip": false, "port_range": []});
    vec![
        case("pelican: nests are no route", "GET", "/nests"),
        case("pelican: a nest's eggs are no route", "GET", "/nests/1/eggs"),
        case("pelican: locations are no route", "GET", "/locations"),
        case("pelican: eggs", "GET", "/eggs"),
        case("pelican: an egg with its variables", "GET", "/eggs/{egg}?include=variables"),
        case("pelican: an egg that does not exist", "GET", "/eggs/99999"),
        case("pelican: nodes", "GET", "/nodes"),
        case("pelican: free allocations", "GET", "/nodes/{node}/allocations?filter[server_id]=false&per_page=5"),
        case("pelican: users", "GET", "/users?filter[email]=dave@example.com"),
        case("pelican: a user by external id", "GET", "/users/external/diff-user"),
        case("pelican: servers with allocations", "GET", "/servers?include=allocations&sort=-id"),
        case("pelican: a server by external id", "GET", "/servers/external/diff-1"),
        case("pelican: create a user without names", "POST", "/users")
            .body(json!({"email": "erin@example.com", "username": "erin", "external_id": "diff-erin"})),
        case("pelican: a user without a username", "POST", "/users").body(json!({"email": "fay@example.com"})),
        case("pelican: a Pterodactyl deploy", "POST", "/servers").body(with(
            pelican_server_body("diff-2"),
            "/deploy",
            pterodactyl_deploy,
        )),
        case("pelican: a deploy without locations", "POST", "/servers").body(with(
            pelican_server_body("diff-3"),
            "/deploy",
            without_locations,
        )),
        case("pelican: build", "PATCH", "/servers/{server}/build").body(build),
        case("pelican: details", "PATCH", "/servers/{server}/details").body(details),
        case("pelican: startup", "PATCH", "/servers/{server}/startup").body(startup),
        case("pelican: suspend", "POST", "/servers/{server}/suspend"),
        case("pelican: unsuspend", "POST", "/servers/{server}/unsuspend"),
        case("pelican: a wrong key", "GET", "/servers").key(Key::Wrong),
        case("pelican: delete", "DELETE", "/servers/{server}"),
    ]
}

/// A user and a server on a Pelican `side`, made by the same requests.
async fn prepare_pelican(side: &mut Side, egg: String, tag: &str) {
    let full = side.keys[&Key::Full].clone();
    let client = reqwest::Client::new();
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut r = client
            .request(method.parse().expect("method"), format!("{}{path}", side.api))
            .bearer_auth(&full)
            .header("Accept", "application/json");
        if let Some(body) = body {
            r = r.json(&body);
        }
        r.send()
    };
    side.ids.insert("egg", egg);
    side.ids.insert("tag", tag.to_string());
    let nodes = call("GET", "/nodes", None).await.expect("nodes").json::<Value>().await.expect("JSON");
    side.ids.insert("node", nodes["data"][0]["attributes"]["id"].to_string());
    let user = json!({"email": "dave@example.com", "username": "dave", "external_id": "diff-user"});
    let user = call("POST", "/users", Some(user)).await.expect("user").json::<Value>().await.expect("JSON");
    side.ids.insert("user", user["attributes"]["id"].to_string());
    let body = body_of(side, &pelican_server_body("diff-1"));
    let server = call("POST", "/servers", Some(body)).await.expect("server").json::<Value>().await.expect("JSON");
    let id = server["attributes"]["id"].to_string();
    assert!(id.parse::<u64>().is_ok(), "{}: the server was not made: {server}", side.name);
    side.ids.insert("allocation", server["attributes"]["allocation"].to_string());
    for _ in 0..100 {
        let now =
            call("GET", &format!("/servers/{id}"), None).await.expect("server").json::<Value>().await.expect("JSON");
        if now["attributes"]["status"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    side.ids.insert("server", id);
}

#[tokio::test]
async fn panel_sim_answers_as_the_real_pelican_panel_does() {
    let what = "panel_sim_answers_as_the_real_pelican_panel_does";
    let Some(panel) = support::real::resettable_of(Flavor::Pelican, what) else { return };
    let _lock = exclusive().await;
    panel.reset();
    let wrong = "peli_WRONGKEYwrongkeyWRONGKEYwrongkeyWRONGKEYwr".to_string();
    let keys = BTreeMap::from([(Key::Full, panel.key.clone()), (Key::Wrong, wrong.clone())]);
    let mut real = Side { name: "real", api: format!("{}/api/application", panel.url), keys, ids: BTreeMap::new() };
    let (_, paper) = panel.egg("Paper").await;
    prepare_pelican(&mut real, paper, "local").await;

    let sim = support::panel::start(Flavor::Pelican, |c| c.install_delay = std::time::Duration::from_secs(2)).await;
    let keys = BTreeMap::from([(Key::Full, support::panel::SIM_KEY.to_string()), (Key::Wrong, wrong)]);
    let mut simulated =
        Side { name: "panel-sim", api: format!("{}/api/application", sim.sim.url), keys, ids: BTreeMap::new() };
    prepare_pelican(&mut simulated, "3".to_string(), "fr-par").await;
    let allowlist = "tests/fixtures/panel-sim-differences-pelican.yaml";
    compare(&real, &simulated, pelican_cases(), allowlist, "Pelican v1.0.0-beta17").await;
}
