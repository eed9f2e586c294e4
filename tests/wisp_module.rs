//! Wisp's own billing module (github:wisp-gg/whmcs, `wisp/wisp.php`) replayed against
//! `pterobox panel-sim --flavor wisp`, request by request, in the media type it asks for since
//! 2026-06 (`vnd.wisp.v2+json`: string ids) and in the one older versions pinned (`v1`: integers).
//! Each request cites the line of `wisp.php` it follows, and each answer is checked for what the
//! module reads from it (status codes, `attributes.id`, `meta.pagination`, `data[]`, `container.*`).
//! The module is the best evidence of Wisp's closed API: what it sends, a Wisp panel accepts.

mod support;

use std::fmt::Write as _;

use pterobox::crd::Flavor;
use serde_json::{Value, json};
use support::panel::{SIM_KEY, TestPanel, start};

/// One request of the module and what came back.
struct Step {
    line: &'static str,
    what: String,
    status: u16,
}

/// The module's `wisp_API` (l.56-104): the key as a bearer token, its Accept header (capital `A`,
/// l.75) and module version header, JSON bodies on POST and PATCH only.
struct Module<'a> {
    panel: &'a TestPanel,
    version: &'static str,
    http: reqwest::Client,
    steps: Vec<Step>,
}

impl<'a> Module<'a> {
    fn new(panel: &'a TestPanel, version: &'static str) -> Self {
        Module { panel, version, http: reqwest::Client::new(), steps: Vec::new() }
    }

    fn v2(&self) -> bool {
        self.version == "v2"
    }

    async fn api(&mut self, line: &'static str, method: &str, endpoint: &str, data: Option<Value>) -> (u16, Value) {
        let url = format!("{}/api/application/{endpoint}", self.panel.sim.url);
        let mut request = self
            .http
            .request(method.parse().expect("method"), url)
            .header("Authorization", format!("Bearer {SIM_KEY}"))
            .header("Accept", format!("Application/vnd.wisp.{}+json", self.version))
            .header("X-Wisp-Module-Version", "1.0.0")
            .header("User-Agent", "WISP-WHMCS");
        if let Some(data) = data {
            request = request.json(&data);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.steps.push(Step { line, what: format!("{method} {}", shape(endpoint)), status });
        (status, body)
    }

    /// `wisp_GetServerID` (l.561-587): the server of a service by its external id, or `None` on 404.
    async fn server_of(&mut self, line: &'static str, service: &str) -> Option<Value> {
        let (status, body) = self.api(line, "GET", &format!("servers/external/{service}"), None).await;
        assert_ne!(status, 500, "l.567: a 500 here stops the module: {body}");
        (status == 200).then_some(body)
    }

    /// `getPaginatedData` (l.840-867): the first page, then `?page=N` until `total_pages`.
    async fn all_pages(&mut self, line: &'static str, endpoint: &str) -> Vec<Value> {
        let (status, mut body) = self.api(line, "GET", endpoint, None).await;
        assert_eq!(status, 200, "{endpoint}: {body}");
        let mut items = Vec::new();
        loop {
            items.extend(body["data"].as_array().cloned().expect("data[]"));
            let current = body["meta"]["pagination"]["current_page"].as_u64().expect("current_page");
            let total = body["meta"]["pagination"]["total_pages"].as_u64().expect("total_pages");
            if total <= current {
                return items;
            }
            let (status, next) = self.api(line, "GET", &format!("{endpoint}?page={}", current + 1), None).await;
            assert_eq!(status, 200, "{endpoint} page {}: {next}", current + 1);
            body = next;
        }
    }

    /// An id as the module's `wisp_NormalizeId` passes it (l.120-131): digits become an integer.
    fn normalize(id: &Value) -> Value {
        match id.as_str() {
            Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                json!(s.parse::<i64>().expect("digits"))
            }
            _ => id.clone(),
        }
    }

    /// An id as the module writes it into a URL (PHP's string interpolation).
    fn text(id: &Value) -> String {
        id.as_str().map(str::to_string).unwrap_or_else(|| id.to_string())
    }

    /// The id an admin typed into the product for object `n` of `kind` (read from the panel as it
    /// shows them in this media type: `loc_01kt…` under v2, `1` under v1).
    async fn typed_id(&mut self, endpoint: &str, n: usize) -> String {
        let (status, body) = self.api("(admin)", "GET", endpoint, None).await;
        self.steps.pop();
        assert_eq!(status, 200, "{endpoint}: {body}");
        Self::text(&body["data"][n]["attributes"]["id"])
    }

    fn assert_id(&self, id: &Value, prefix: &str, what: &str) {
        if self.v2() {
            let ok = id.as_str().is_some_and(|s| s.starts_with(&format!("{prefix}_")));
            assert!(ok, "{}: {what} should be a {prefix}_… string id under v2, got {id}", self.version);
        } else {
            assert!(
                id.as_i64().is_some_and(|n| n > 0),
                "{}: {what} should be an integer under v1, got {id}",
                self.version
            );
        }
    }
}

/// `servers/external/42?x=1` as `servers/external/{id}?x`: the table reads the same whatever the ids.
fn shape(endpoint: &str) -> String {
    let (path, query) = endpoint.split_once('?').unwrap_or((endpoint, ""));
    let collections = ["servers", "users", "external", "nests", "eggs", "locations", "nodes"];
    let mut previous = "";
    let mut out = Vec::new();
    for seg in path.split('/') {
        let id = collections.contains(&previous) && seg != "external";
        out.push(if id { "{id}" } else { seg });
        previous = seg;
    }
    let keys: Vec<&str> = query.split('&').filter_map(|kv| kv.split('=').next()).filter(|k| !k.is_empty()).collect();
    if keys.is_empty() { out.join("/") } else { format!("{}?{}", out.join("/"), keys.join("&")) }
}

/// The product: `wisp_ConfigOptions` values an admin set. Blank ones are absent.
struct Product {
    nest: String,
    egg: String,
    location: String,
    memory: Option<i64>,
    cpu: Option<i64>,
    disk: Option<i64>,
    databases: Option<i64>,
    additional_ports: Option<&'static str>,
    /// Variables the product sets by env name; the others are left to the panel's defaults.
    variables: Vec<(&'static str, &'static str)>,
}

/// `wisp_CreateAccount` (l.360-558) for client `uuid`/`email`, service `service`.
async fn create_account(m: &mut Module<'_>, product: &Product, service: &str, uuid: &str, email: &str) -> Value {
    assert!(m.server_of("l.364, l.563", service).await.is_none(), "l.365: the service has no server yet");

    let (status, mut user) = m.api("l.368", "GET", &format!("users/external/{uuid}"), None).await;
    if status == 404 {
        let (status, found) = m.api("l.370", "GET", &format!("users?search={email}"), None).await;
        assert_eq!(status, 200, "{found}");
        let total = found["meta"]["pagination"]["total"].as_u64().expect("l.371 reads meta.pagination.total");
        assert_eq!(total, 0, "a new customer: {found}");
        let body = json!({"email": email, "first_name": "Bob", "last_name": "Dupont", "external_id": uuid});
        let (status, made) = m.api("l.372-377", "POST", "users", Some(body)).await;
        assert!(status == 200 || status == 201, "l.389 needs 200 or 201: {status} {made}");
        user = made;
    } else {
        assert_eq!(status, 200, "l.389: {user}");
    }
    let user_id = user["attributes"]["id"].clone();
    m.assert_id(&user_id, "user", "l.390 attributes.id of the user");

    let egg_path = format!("nests/{}/eggs/{}?include=variables", product.nest, product.egg);
    let (status, egg) = m.api("l.399", "GET", &egg_path, None).await;
    assert_eq!(status, 200, "l.400: {egg}");
    // l.402-411: only the variables the product sets.
    let mut environment = serde_json::Map::new();
    let variables = egg["attributes"]["relationships"]["variables"]["data"].as_array().cloned().expect("l.403");
    assert!(!variables.is_empty(), "the egg has variables");
    for v in &variables {
        let var = v["attributes"]["env_variable"].as_str().expect("l.405 env_variable");
        if let Some((_, value)) = product.variables.iter().find(|(k, _)| *k == var) {
            environment.insert(var.to_string(), json!(value));
        }
    }
    assert!(environment.len() < variables.len(), "the replay leaves some variables to the panel's defaults");
    let image = egg["attributes"]["docker_image"].clone();
    let startup = egg["attributes"]["startup"].clone();
    assert!(image.is_string() && startup.is_string(), "l.427-428 read docker_image and startup: {egg}");

    let int_or_null = |v: Option<i64>| v.map_or(Value::Null, |n| json!(n));
    let location = Module::normalize(&json!(product.location));
    // l.436-466; blank options are null (wisp_IntOrNull, l.133-136).
    let mut server = json!({
        "name": "My Server",
        "user": Module::normalize(&user_id),
        "nest": Module::normalize(&json!(product.nest)),
        "egg": Module::normalize(&json!(product.egg)),
        "docker_image": image,
        "startup": startup,
        "oom_disabled": false,
        "force_outgoing_ip": false,
        "limits": {"memory": int_or_null(product.memory), "swap": null, "io": null,
                   "cpu": int_or_null(product.cpu), "disk": int_or_null(product.disk)},
        "feature_limits": {"databases": int_or_null(product.databases), "allocations": null,
                           "backup_megabytes_limit": null, "backup_count_limit": null},
        "deploy": {"locations": [location], "dedicated_ip": false, "port_range": []},
        "environment": environment,
        "start_on_completion": true,
        "external_id": service,
    });

    let mut chosen = None;
    if let Some(offsets) = product.additional_ports {
        // l.480: PHP interpolates blank options as empty strings.
        let q = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let path = format!(
            "locations/{}/eligible-nodes?cpu={}&memory={}&disk={}",
            product.location,
            q(product.cpu),
            q(product.memory),
            q(product.disk)
        );
        let (status, nodes) = m.api("l.480", "GET", &path, None).await;
        assert_eq!(status, 200, "{nodes}");
        let nodes = nodes["data"].as_array().cloned().expect("l.481 reads data[]");
        assert!(!nodes.is_empty(), "l.484-527: the location has eligible nodes");
        let offsets: serde_json::Map<String, Value> = serde_json::from_str(offsets).expect("offsets");
        for node in &nodes {
            assert!(node["name"].is_string(), "l.489 reads each node's name: {node}");
            m.assert_id(&node["id"], "node", "l.492 data[].id of an eligible node");
            let free = m
                .all_pages("l.492, l.827", &format!("nodes/{}/allocations/available", Module::text(&node["id"])))
                .await;
            // findFreePorts (l.869-960): the first free port whose offsets are free too.
            let port_of = |a: &Value| a["attributes"]["port"].as_i64().expect("l.831 attributes.port");
            let find = |port: i64| free.iter().find(|a| port_of(a) == port);
            let found = free.iter().find_map(|a| {
                let extra: Option<Vec<&Value>> =
                    offsets.keys().map(|o| find(port_of(a) + o.parse::<i64>().expect("offset"))).collect();
                extra.map(|extra| (a, extra))
            });
            if let Some((main, extra)) = found {
                let id = |a: &Value| a["attributes"]["id"].clone();
                m.assert_id(&id(main), "alloc", "l.833 attributes.id of a free allocation");
                server.as_object_mut().expect("object").remove("deploy");
                // l.501-502: the main id normalized, the additional ones as strings (strval, l.934).
                server["allocation"] = json!({
                    "default": Module::normalize(&id(main)),
                    "additional": extra.iter().map(|a| json!(Module::text(&id(a)))).collect::<Vec<_>>(),
                });
                chosen = Some((id(main), extra.iter().map(|a| id(a)).collect::<Vec<_>>()));
                break;
            }
        }
        assert!(chosen.is_some(), "l.516-519: no node had the ports");
    }

    let (status, made) = m.api("l.538", "POST", "servers", Some(server)).await;
    assert!(status == 200 || status == 201, "l.542 needs 201 or 200: {status} {made}");
    assert!(made.get("errors").is_none(), "l.543: {made}");
    m.assert_id(&made["attributes"]["id"], "server", "attributes.id of the server");

    // What the panel made of it, as the module reads it back (l.639-642, l.693-698).
    let read = m.server_of("l.563", service).await.expect("the server by its external id");
    let env = &read["attributes"]["container"]["environment"];
    for v in &variables {
        let var = v["attributes"]["env_variable"].as_str().expect("env_variable");
        let expected = match product.variables.iter().find(|(k, _)| *k == var) {
            Some((_, value)) => json!(value),
            None => v["attributes"]["default_value"].clone(),
        };
        assert_eq!(env[var], expected, "{var}: an unset variable takes the egg's default");
    }
    let limits = &read["attributes"]["limits"];
    assert_eq!(limits["swap"], json!(0), "a null limit is unlimited (0): {limits}");
    assert_eq!(limits["memory"], json!(product.memory.unwrap_or(0)), "{limits}");
    if let Some((main, extra)) = chosen {
        assert_eq!(read["attributes"]["allocation"], main, "the main allocation is the module's pick");
        let (status, with) = m
            .api(
                "(check)",
                "GET",
                &format!("servers/{}?include=allocations", Module::text(&made["attributes"]["id"])),
                None,
            )
            .await;
        m.steps.pop();
        assert_eq!(status, 200, "{with}");
        let ids: Vec<Value> = with["attributes"]["relationships"]["allocations"]["data"]
            .as_array()
            .map(|a| a.iter().map(|x| x["attributes"]["id"].clone()).collect())
            .unwrap_or_default();
        for a in extra {
            assert!(ids.contains(&a), "additional allocation {a} is the server's: {ids:?}");
        }
    }
    read
}

async fn replay(version: &'static str) -> Vec<Step> {
    // A hundred ports a node: the free allocations come in two pages (50 a page), as the module pages them.
    let panel = start(Flavor::Wisp, |c| c.catalog.nodes.iter_mut().for_each(|n| n.ports = "25565-25664".into())).await;
    let mut m = Module::new(&panel, version);

    // wisp_TestConnection (l.293-326).
    let (status, nodes) = m.api("l.306", "GET", "nodes", None).await;
    assert_eq!(status, 200, "l.308: {nodes}");
    let count = nodes["meta"]["pagination"]["count"].as_u64().expect("l.313 reads meta.pagination.count");
    assert!(count > 0, "l.314: no nodes");

    let location = m.typed_id("locations", 0).await;
    let nest = m.typed_id("nests", 0).await;
    let (status, eggs) = m.api("(admin)", "GET", &format!("nests/{nest}/eggs"), None).await;
    m.steps.pop();
    assert_eq!(status, 200, "{eggs}");
    let paper = eggs["data"].as_array().and_then(|e| e.iter().find(|e| e["attributes"]["name"] == "Paper")).cloned();
    let egg = Module::text(&paper.expect("the Paper egg")["attributes"]["id"]);
    let mut product = Product {
        nest,
        egg,
        location,
        memory: Some(2048),
        cpu: Some(200),
        disk: Some(10_240),
        databases: Some(1),
        additional_ports: None,
        variables: vec![("SERVER_JARFILE", "paper.jar")],
    };

    let first = create_account(&mut m, &product, "1001", "c-7f3a", "bob@example.com").await;
    // The same client's second service, with additional ports (l.473-528): the user is found by
    // external id this time (l.368-369).
    product.additional_ports = Some(r#"{"1": "NONE_QUERY", "2": "NONE_RCON"}"#);
    create_account(&mut m, &product, "1002", "c-7f3a", "bob@example.com").await;

    // wisp_SuspendAccount / wisp_UnsuspendAccount (l.589-617).
    for (line, action) in [("l.595", "suspend"), ("l.610", "unsuspend")] {
        let id = m.server_of("l.592, l.563", "1001").await.expect("server")["attributes"]["id"].clone();
        let (status, body) = m.api(line, "POST", &format!("servers/{}/{action}", Module::text(&id)), None).await;
        assert_eq!(status, 204, "l.596/611 need 204 on {action}: {body}");
    }
    let suspended = m.server_of("(check)", "1001").await.expect("server");
    m.steps.pop();
    assert_eq!(suspended["attributes"]["suspended"], json!(false), "unsuspended again");

    // wisp_ChangePassword (l.634-665).
    let raw = m.server_of("l.639, l.563", "1001").await.expect("server");
    let user = raw["attributes"]["user"].clone();
    m.assert_id(&user, "user", "l.642 attributes.user");
    let (status, u) = m.api("l.643", "GET", &format!("users/{}", Module::text(&user)), None).await;
    assert_eq!(status, 200, "l.644: {u}");
    let body = json!({
        "email": u["attributes"]["email"], "first_name": u["attributes"]["first_name"],
        "last_name": u["attributes"]["last_name"], "password": "Correct-Horse-Battery-9",
    });
    let (status, updated) = m.api("l.646-652", "PATCH", &format!("users/{}", Module::text(&user)), Some(body)).await;
    assert_eq!(status, 200, "l.653: {updated}");

    // wisp_ChangePackage (l.667-763): a bigger product on the same egg.
    let raw = m.server_of("l.670, l.563", "1001").await.expect("server");
    let id = Module::text(&raw["attributes"]["id"]);
    let container = &raw["attributes"]["container"];
    for field in ["environment", "image", "startup_command"] {
        assert!(!container[field].is_null(), "l.693-698 read container.{field}: {raw}");
    }
    let egg_path = format!("nests/{}/eggs/{}?include=variables", product.nest, product.egg);
    let (status, egg) = m.api("l.681", "GET", &egg_path, None).await;
    assert_eq!(status, 200, "l.682: {egg}");
    let mut environment = serde_json::Map::new();
    for v in egg["attributes"]["relationships"]["variables"]["data"].as_array().cloned().unwrap_or_default() {
        let var = v["attributes"]["env_variable"].as_str().expect("env_variable").to_string();
        let value =
            container["environment"].get(&var).cloned().or_else(|| v["attributes"].get("default_value").cloned());
        if let Some(value) = value {
            environment.insert(var, value);
        }
    }
    let body = json!({
        "environment": environment, "startup": container["startup_command"],
        "egg": Module::normalize(&json!(product.egg)), "pack": null,
        "image": container["image"], "skip_scripts": false,
    });
    let (status, startup) = m.api("l.699-708", "PATCH", &format!("servers/{id}/startup"), Some(body)).await;
    assert_eq!(status, 200, "l.709: {startup}");
    let body = json!({"server_template": null, "resync": false});
    let (status, template) = m.api("l.716-719", "PATCH", &format!("servers/{id}/server-template"), Some(body)).await;
    assert_eq!(status, 200, "l.720 (logged, not fatal, but the module expects 200): {template}");
    let body = json!({
        "allocation": raw["attributes"]["allocation"],
        "memory": 4096, "swap": null, "io": null, "cpu": 300, "disk": null,
        "oom_disabled": false, "force_outgoing_ip": false,
        "feature_limits": {"databases": 2, "allocations": null, "backup_megabytes_limit": null, "backup_count_limit": null},
    });
    let (status, build) = m.api("l.736-756", "PATCH", &format!("servers/{id}/build"), Some(body)).await;
    assert_eq!(status, 200, "l.757: {build}");
    let after = m.server_of("(check)", "1001").await.expect("server");
    m.steps.pop();
    let limits = &after["attributes"]["limits"];
    assert_eq!(
        (limits["memory"].clone(), limits["cpu"].clone(), limits["disk"].clone()),
        (json!(4096), json!(300), json!(0))
    );
    assert_eq!(after["attributes"]["feature_limits"]["databases"], json!(2));

    // wisp_ClientArea (l.780-799).
    let raw = m.server_of("l.785, l.563", "1001").await.expect("server");
    let identifier = raw["attributes"]["identifier"].as_str().unwrap_or_default();
    assert!(!identifier.is_empty(), "l.793 reads attributes.identifier: {raw}");

    // wisp_TerminateAccount (l.619-632), both services.
    for service in ["1001", "1002"] {
        let id = m.server_of("l.622, l.563", service).await.expect("server")["attributes"]["id"].clone();
        let (status, body) = m.api("l.625", "DELETE", &format!("servers/{}", Module::text(&id)), None).await;
        assert_eq!(status, 204, "l.626: {body}");
    }
    assert!(m.server_of("(check)", "1001").await.is_none(), "terminated");
    m.steps.pop();
    assert_eq!(first["attributes"]["external_id"], json!("1001"));
    m.steps
}

#[tokio::test]
async fn the_billing_modules_requests_are_accepted_in_v1_and_v2() {
    let v1 = replay("v1").await;
    let v2 = replay("v2").await;
    assert_eq!(v1.len(), v2.len(), "the same sequence in both media types");
    let mut table = String::from("\nWisp billing module (wisp/wisp.php) replayed against panel-sim --flavor wisp\n");
    let _ = writeln!(table, "  {:<14} {:<58} {:>4} {:>4}", "wisp.php", "request", "v1", "v2");
    let mut rows: Vec<(&Step, &Step, usize)> = Vec::new();
    for (a, b) in v1.iter().zip(&v2) {
        assert_eq!((a.line, &a.what), (b.line, &b.what), "the same request in both");
        match rows.last_mut() {
            Some((x, y, n)) if (x.line, &x.what, x.status, y.status) == (a.line, &a.what, a.status, b.status) => {
                *n += 1
            }
            _ => rows.push((a, b, 1)),
        }
    }
    for (a, b, n) in rows {
        let what = if n > 1 { format!("{} (x{n})", a.what) } else { a.what.clone() };
        let _ = writeln!(table, "  {:<14} {:<58} {:>4} {:>4}", a.line, what, a.status, b.status);
    }
    let _ = writeln!(table, "  {} requests, each answered as the module requires, in both media types", v1.len());
    support::report(&table);
}
