//! `pterobox panel-sim` answers with the JSON shapes of `../shared/ref/*.md`, field for field,
//! checked on raw HTTP responses (not through the client's parsing).

mod support;

use std::collections::BTreeSet;

use pterobox::crd::Flavor;
use serde_json::{Value, json};
use support::panel::{SIM_KEY, TestPanel, start};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn raw(
    p: &TestPanel,
    method: &str,
    path: &str,
    body: Option<Value>,
    accept: &str,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    // Redirects are answers too: do not follow them.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut request = client
        .request(method.parse().expect("method"), format!("{}/api/application{path}", p.sim.url))
        .header("Accept", accept);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn accept(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Pterodactyl | Flavor::Pelican => "application/json",
        Flavor::Wisp => "application/vnd.wisp.v1+json",
    }
}

async fn api(p: &TestPanel, method: &str, path: &str, body: Option<Value>) -> (u16, reqwest::header::HeaderMap, Value) {
    raw(p, method, path, body, accept(p.flavor), Some(SIM_KEY)).await
}

async fn create_owner(p: &TestPanel) -> Value {
    let mut body =
        json!({"email": "alice@example.com", "first_name": "Alice", "last_name": "Martin", "external_id": "u-1"});
    if p.flavor == Flavor::Pterodactyl {
        body["username"] = json!("alice");
    }
    let (status, _, user) = api(p, "POST", "/users", Some(body)).await;
    assert_eq!(status, 201, "{user}");
    user
}

fn server_body(flavor: Flavor, user: &Value) -> Value {
    let mut body = json!({
        "name": "mc", "user": user["attributes"]["id"], "egg": 3, "external_id": "uid-1",
        "docker_image": "ghcr.io/pterodactyl/yolks:java_21", "startup": "java -jar {{SERVER_JARFILE}}",
        "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
        "limits": {"memory": 1024, "swap": 0, "disk": 2048, "io": 500, "cpu": 100},
        "deploy": {"locations": [1], "dedicated_ip": false, "port_range": ["30100-30200"]},
    });
    match flavor {
        Flavor::Pterodactyl | Flavor::Pelican => {
            body["feature_limits"] = json!({"databases": 0, "allocations": 1, "backups": 1})
        }
        Flavor::Wisp => {
            body["nest"] = json!(1);
            body["feature_limits"] =
                json!({"databases": 0, "allocations": 1, "backup_count_limit": 1, "backup_megabytes_limit": 2048});
        }
    }
    body
}

fn assert_pagination(list: &Value, total: u64, per_page: u64, page: u64) {
    assert_eq!(list["object"], "list");
    assert!(list["data"].is_array());
    let pagination = &list["meta"]["pagination"];
    assert_eq!(keys(pagination), set(&["total", "count", "per_page", "current_page", "total_pages", "links"]));
    assert_eq!(pagination["total"], total);
    assert_eq!(pagination["per_page"], per_page);
    assert_eq!(pagination["current_page"], page);
    assert_eq!(pagination["count"], list["data"].as_array().map(|d| d.len()).unwrap_or(0));
    assert!(pagination["links"].is_object(), "links is an object, even when empty");
}

#[tokio::test]
async fn pterodactyl_servers_users_and_lists_have_the_refs_fields() {
    let p = start(Flavor::Pterodactyl, |_| {}).await;
    let user = create_owner(&p).await;
    assert_eq!(
        keys(&user["attributes"]),
        set(&[
            "id",
            "external_id",
            "uuid",
            "username",
            "email",
            "first_name",
            "last_name",
            "language",
            "root_admin",
            "2fa",
            "created_at",
            "updated_at"
        ])
    );
    assert!(user["meta"]["resource"].as_str().is_some_and(|r| r.ends_with("/users/1")), "{user}");

    let (status, _, server) = api(&p, "POST", "/servers", Some(server_body(p.flavor, &user))).await;
    assert_eq!(status, 201, "{server}");
    assert_eq!(server["object"], "server");
    assert!(server.get("meta").is_none(), "server create has no meta");
    let a = &server["attributes"];
    assert_eq!(
        keys(a),
        set(&[
            "id",
            "external_id",
            "uuid",
            "identifier",
            "name",
            "description",
            "status",
            "suspended",
            "limits",
            "feature_limits",
            "user",
            "node",
            "allocation",
            "nest",
            "egg",
            "container",
            "updated_at",
            "created_at"
        ])
    );
    assert_eq!(keys(&a["limits"]), set(&["memory", "swap", "disk", "io", "cpu", "threads", "oom_disabled"]));
    assert_eq!(keys(&a["feature_limits"]), set(&["databases", "allocations", "backups"]));
    assert_eq!(keys(&a["container"]), set(&["startup_command", "image", "installed", "environment"]));
    assert_eq!(a["status"], "installing");
    assert_eq!(a["container"]["installed"], 0, "an int, not a bool");
    assert_eq!(a["identifier"].as_str().map(str::len), Some(8));
    assert_eq!(a["description"], "");
    assert_eq!(a["oom_disabled"], Value::Null, "oom_disabled lives in limits");
    assert_eq!(a["limits"]["oom_disabled"], true, "Pterodactyl's default");
    let env = &a["container"]["environment"];
    assert_eq!(env["MINECRAFT_VERSION"], "", "an omitted optional variable is stored empty, not defaulted");
    for added in ["STARTUP", "P_SERVER_LOCATION", "P_SERVER_UUID", "P_SERVER_ALLOCATION_LIMIT"] {
        assert!(env.get(added).is_some(), "the panel adds {added}");
    }
    assert!(a["created_at"].as_str().is_some_and(|t| t.ends_with("+00:00")), "{}", a["created_at"]);

    let id = a["id"].as_u64().expect("numeric id");
    let (_, _, with) = api(&p, "GET", &format!("/servers/{id}?include=allocations"), None).await;
    let allocation = &with["attributes"]["relationships"]["allocations"]["data"][0];
    assert_eq!(allocation["object"], "allocation");
    assert_eq!(keys(&allocation["attributes"]), set(&["id", "ip", "alias", "port", "notes", "assigned"]));

    let (status, _, body) = api(&p, "POST", &format!("/servers/{id}/suspend"), None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (_, _, suspended) = api(&p, "GET", &format!("/servers/{id}"), None).await;
    assert_eq!(suspended["attributes"]["status"], "suspended");

    let (_, _, list) = api(&p, "GET", "/servers?per_page=1&page=1", None).await;
    assert_pagination(&list, 1, 1, 1);
    assert_eq!(list["meta"]["pagination"]["links"], json!({}));
    for _ in 0..2 {
        let mut body = server_body(p.flavor, &user);
        body["external_id"] = json!(format!("uid-extra-{}", rand_suffix()));
        assert_eq!(api(&p, "POST", "/servers", Some(body)).await.0, 201);
    }
    let (_, _, list) = api(&p, "GET", "/servers?per_page=1&page=2&sort=id", None).await;
    assert_pagination(&list, 3, 1, 2);
    let links = &list["meta"]["pagination"]["links"];
    assert!(links["next"].as_str().is_some_and(|l| l.ends_with("/servers?page=3")), "links carry only page=: {links}");
    assert!(links["previous"].as_str().is_some_and(|l| l.ends_with("/servers?page=1")), "{links}");
    let (_, _, default_page) = api(&p, "GET", "/servers", None).await;
    assert_eq!(default_page["meta"]["pagination"]["per_page"], 50);

    let (_, _, egg) = api(&p, "GET", "/nests/1/eggs/3?include=variables", None).await;
    assert!(egg["attributes"]["docker_images"].is_object());
    let var = &egg["attributes"]["relationships"]["variables"]["data"][0];
    assert_eq!(var["object"], "egg_variable");
    assert_eq!(
        keys(&var["attributes"]),
        set(&[
            "id",
            "egg_id",
            "name",
            "description",
            "env_variable",
            "default_value",
            "user_viewable",
            "user_editable",
            "rules",
            "created_at",
            "updated_at"
        ])
    );
    let (_, _, eggs) = api(&p, "GET", "/nests/1/eggs", None).await;
    assert!(eggs.get("meta").is_none(), "the eggs of a nest are not paginated");
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn pterodactyl_errors_have_the_refs_envelope() {
    let p = start(Flavor::Pterodactyl, |c| {
        c.rate_limit = 30;
        c.rate_window = std::time::Duration::from_secs(30);
    })
    .await;
    let user = create_owner(&p).await;

    let mut body = server_body(p.flavor, &user);
    body["limits"]["io"] = json!(5);
    body["environment"] = json!({"SERVER_JARFILE": "server.zip", "BUILD_NUMBER": "latest"});
    let (status, _, e) = api(&p, "POST", "/servers", Some(body)).await;
    assert_eq!(status, 422);
    let entry = &e["errors"][0];
    assert_eq!(keys(entry), set(&["code", "status", "detail", "meta"]));
    assert_eq!(entry["code"], "ValidationException");
    assert_eq!(entry["status"], "422", "status is a string");
    assert_eq!(entry["meta"], json!({"source_field": "limits.io", "rule": "between"}));

    let mut body = server_body(p.flavor, &user);
    body["environment"] = json!({"SERVER_JARFILE": "", "BUILD_NUMBER": "latest"});
    let (_, _, e) = api(&p, "POST", "/servers", Some(body)).await;
    assert_eq!(
        e["errors"][0]["meta"],
        json!({"source_field": "environment.SERVER_JARFILE", "rule": "required"}),
        "\"\" counts as missing"
    );

    let mut body = server_body(p.flavor, &user);
    body["limits"]["memory"] = json!(100_000_000);
    let (status, _, e) = api(&p, "POST", "/servers", Some(body)).await;
    assert_eq!(status, 400);
    assert_eq!(
        e["errors"][0],
        json!({"code": "NoViableNodeException", "status": "400", "detail": "No nodes satisfying the requirements specified for automatic deployment could be found."})
    );

    let (status, _, e) = api(&p, "GET", "/servers/999", None).await;
    assert_eq!((status, e["errors"][0]["code"].clone()), (404, json!("NotFoundHttpException")));
    let (status, _, e) = api(&p, "GET", "/servers?filter[node]=1", None).await;
    assert_eq!((status, e["errors"][0]["code"].clone()), (400, json!("InvalidFilterQuery")));
    let (status, _, e) = raw(&p, "GET", "/servers", None, "application/json", None).await;
    assert_eq!((status, e["errors"][0]["detail"].clone()), (401, json!("Unauthenticated.")));
    // A browser's Accept: a key is answered as ever, no key is sent to the login page (as the real
    // panel does; tests/panel_differential.rs compares).
    let (status, _, _) = raw(&p, "GET", "/servers", None, "text/html", Some(SIM_KEY)).await;
    assert_eq!(status, 200);
    let (status, headers, _) = raw(&p, "GET", "/servers", None, "text/html", None).await;
    let location = headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(status == 302 && location.ends_with("/auth/login"), "{status} {location}");

    loop {
        let (status, headers, e) = api(&p, "GET", "/locations", None).await;
        if status == 429 {
            assert_eq!(
                e,
                json!({"errors": [{"code": "ThrottleRequestsException", "status": "429", "detail": "Too Many Attempts."}]})
            );
            for h in ["retry-after", "x-ratelimit-limit", "x-ratelimit-reset"] {
                assert!(headers.get(h).is_some(), "429 without {h}");
            }
            assert_eq!(headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()), Some("0"));
            break;
        }
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn wisp_differs_where_the_ref_says_it_does() {
    let p = start(Flavor::Wisp, |_| {}).await;
    let user = create_owner(&p).await;
    assert!(user["attributes"].get("username").is_none(), "Wisp users have no username");

    let (status, _, server) = api(&p, "POST", "/servers", Some(server_body(p.flavor, &user))).await;
    assert_eq!(status, 201, "{server}");
    let a = &server["attributes"];
    assert!(a.get("status").is_none(), "Wisp has no status string");
    assert_eq!(a["suspended"], false);
    assert_eq!(a["container"]["installed"], false, "a bool on Wisp");
    assert_eq!(
        keys(&a["feature_limits"]),
        set(&["databases", "allocations", "backup_megabytes_limit", "backup_count_limit"])
    );
    assert!(a["limits"].get("threads").is_none());

    let mut bad = server_body(p.flavor, &user);
    bad["external_id"] = json!("uid-1");
    let (status, _, e) = api(&p, "POST", "/servers", Some(bad)).await;
    assert_eq!(status, 422);
    assert_eq!(
        e["errors"][0],
        json!({"code": "unique", "detail": "The external id has already been taken.", "source": {"field": "external_id"}})
    );

    let mut far = server_body(p.flavor, &user);
    far["external_id"] = json!("uid-far");
    far["limits"]["memory"] = json!(100_000_000);
    let (status, _, e) = api(&p, "POST", "/servers", Some(far)).await;
    assert_eq!((status, e["errors"][0]["code"].clone()), (400, json!("admin.servers.deployment.no_viable_nodes")));

    let (status, _, _) = raw(&p, "GET", "/servers", None, accept(p.flavor), Some("wrong-key")).await;
    assert_eq!(status, 403, "a wrong key is 403 on Wisp");
    let (status, _, found) = api(&p, "GET", "/users?search=alice", None).await;
    assert_eq!((status, found["data"].as_array().map(Vec::len)), (200, Some(1)));
}

#[tokio::test]
async fn the_admin_endpoint_counts_requests_by_route() {
    let p = start(Flavor::Pterodactyl, |_| {}).await;
    api(&p, "GET", "/servers", None).await;
    api(&p, "GET", "/servers/7", None).await;
    api(&p, "GET", "/servers/external/abc", None).await;
    api(&p, "POST", "/servers/7/suspend", None).await;
    let stats = p.stats().await;
    assert_eq!(stats.count("GET /servers"), 1);
    assert_eq!(stats.count("GET /servers/{id}"), 1);
    assert_eq!(stats.count("GET /servers/external/{id}"), 1);
    assert_eq!(stats.count("POST /servers/{id}/suspend"), 1);
    assert_eq!((stats.total, stats.writes), (4, 0), "the suspend of a missing server wrote nothing");
}
