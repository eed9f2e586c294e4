//! `pterobox conformance`: before a hosting company points PteroBox at its panel (staging first), the
//! client's contract checked against that panel, with a table of what was expected and what the
//! panel answered. Read-only by default: the key and its permissions, the catalog, the rate-limit
//! headers, the panel's two kinds of 404, paging, lookups. With `--write`, a throwaway user and
//! server are made, resized, renamed, restarted, suspended, unsuspended and deleted — and whatever
//! happens (a failed step, Ctrl-C) both are removed again before it exits. The key is never printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::crd::Flavor;
use crate::panel::{
    Build, Details, FeatureLimits, Limits, NewServer, NewUser, Panel, PanelError, PanelServer, Startup,
};
use crate::panel_source::{Connected, PanelSource};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    source: PanelSource,
    /// Also write: make a throwaway user and server, change them as the operator does, delete them.
    #[arg(long)]
    write: bool,
    /// With --write: the location the server is placed in (`deploy`); on Pelican, a node tag.
    #[arg(long, requires = "write")]
    location: Option<String>,
    /// With --write: the egg of the server, `NEST/EGG` (Pelican: `/EGG`, it has no nests).
    #[arg(long, requires = "write", value_parser = parse_egg)]
    egg: Option<(String, String)>,
    /// With --write: the ports its allocation may take, `A-B` (default: any free one).
    #[arg(long, requires = "write")]
    port_range: Option<String>,
    /// With --write: a value for an egg variable whose default is empty, `NAME=VALUE` (repeatable).
    #[arg(long = "env", requires = "write", value_parser = parse_env)]
    environment: Vec<(String, String)>,
    /// `table` (default) or `json`.
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

/// `NEST/EGG`: each an integer id, or a string one (Wisp v2: `nest_01kt…/egg_01kt…`).
fn parse_egg(text: &str) -> Result<(String, String), String> {
    let (nest, egg) = text.split_once('/').ok_or_else(|| format!("{text:?}: expected NEST/EGG, e.g. 1/5"))?;
    let id = |s: &str| {
        let s = s.trim();
        let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| s.to_string()).ok_or_else(|| format!("{text:?}: {s:?} is not an id"))
    };
    // Pelican's eggs have no nest: `/EGG`.
    let nest = if nest.trim().is_empty() { String::new() } else { id(nest)? };
    Ok((nest, id(egg)?))
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected NAME=VALUE"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub expected: String,
    pub got: String,
    pub ok: bool,
}

/// The checks so far.
#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn check(&mut self, what: &str, expected: &str, got: impl Into<String>, ok: bool) -> bool {
        self.checks.push(Check { what: what.into(), expected: expected.into(), got: got.into(), ok });
        ok
    }

    fn failed(&self) -> bool {
        self.checks.iter().any(|c| !c.ok)
    }
}

/// The panel error as a reader needs it: its kind and text (never the key: the client scrubs it).
fn why(e: &PanelError) -> String {
    format!("{} ({e})", e.label())
}

/// What `pterobox conformance` returns: 0 when every check passed, 1 when one failed, 130 when it
/// was interrupted (after cleaning up).
pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    if args.write && (args.location.is_none() || args.egg.is_none()) {
        anyhow::bail!("--write needs --location N and --egg NEST/EGG: where the throwaway server goes");
    }
    // The operator's default share of the panel's window: what the admin's other clients keep stays theirs.
    let connected = args.source.connect(200).await?;
    let mut report = Report::default();
    read_only(&connected, &mut report).await;
    let mut interrupted = false;
    if args.write && !report.failed() {
        interrupted = write(&connected, &args, &mut report).await;
    } else if args.write {
        report.check("write checks", "run after the read-only ones pass", "not run: a read-only check failed", false);
    }
    match args.output {
        Output::Table => print!("{}", table(&connected, &report.checks)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report.checks)?),
    }
    Ok(match (interrupted, report.failed()) {
        (true, _) => std::process::ExitCode::from(130),
        (false, true) => std::process::ExitCode::FAILURE,
        (false, false) => std::process::ExitCode::SUCCESS,
    })
}

fn table(connected: &Connected, checks: &[Check]) -> String {
    let mut out = format!("pterobox conformance: {} ({:?})\n", connected.describe(), connected.flavor);
    let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
    for c in checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "  {mark}  {:<width$}  expected: {}", c.what, c.expected);
        let _ = writeln!(out, "        {:<width$}  got:      {}", "", c.got);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    let _ = writeln!(out, "{} checks, {} failed", checks.len(), failed);
    out
}

/// Everything that reads only.
async fn read_only(connected: &Connected, report: &mut Report) {
    let panel = connected.panel.as_ref();
    // Pelican has no locations: its nodes (with their tags) answer instead.
    let pelican = connected.flavor == Flavor::Pelican;
    let key_ok = match pelican {
        false => match panel.locations().await {
            Ok(l) => {
                report.check("the key is accepted", "GET /locations answers", format!("{} location(s)", l.len()), true)
            }
            Err(e) => report.check("the key is accepted", "GET /locations answers", why(&e), false),
        },
        true => match panel.nodes().await {
            Ok(n) => report.check("the key is accepted", "GET /nodes answers", format!("{} node(s)", n.len()), true),
            Err(e) => report.check("the key is accepted", "GET /nodes answers", why(&e), false),
        },
    };
    if !key_ok {
        return;
    }
    let needed = match pelican {
        false => "read and write on servers and users; read on allocations, locations, nests, eggs",
        true => "read and write on server and user; read on allocation, node, egg",
    };
    match panel.missing_permissions().await {
        Ok(missing) if missing.is_empty() => report.check("the key's permissions", needed, "all of them", true),
        Ok(missing) => report.check("the key's permissions", needed, format!("missing {}", missing.join(", ")), false),
        Err(e) => report.check("the key's permissions", needed, why(&e), false),
    };
    catalog(panel, report).await;
    rate_limit_headers(connected, report).await;
    let missing = panel.server("2147483647").await;
    let got = match &missing {
        Err(PanelError::NotFound { .. }) => "the panel's own \"not found\"".to_string(),
        Ok(s) => format!("a server ({})", s.id),
        Err(e) => why(e),
    };
    let ok = matches!(missing, Err(PanelError::NotFound { .. }));
    report.check("a server that does not exist", "the panel's 404 for a missing object", got, ok);
    let route = raw_status(connected, "/pterobox-conformance-no-such-route").await;
    let ok = route.as_ref().is_ok_and(|(status, code, detail)| {
        *status == 404 && code == "NotFoundHttpException" && detail.starts_with("The route ")
    });
    let got = match route {
        Ok((status, code, detail)) => format!("{status} {code}: {detail}"),
        Err(e) => e,
    };
    report.check(
        "a route the panel does not have",
        "a 404 that names the route (told apart from a missing object)",
        got,
        ok,
    );
    let expected = "no user (an exact match of the panel's search)";
    match panel.user_by_email("nobody@pterobox-conformance.invalid").await {
        Ok(None) => report.check("a user looked up by e-mail", expected, "none", true),
        Ok(Some(u)) => report.check("a user looked up by e-mail", expected, format!("user {}", u.id), false),
        Err(e) => report.check("a user looked up by e-mail", expected, why(&e), false),
    };
    match panel.server_by_external_id("pterobox-conformance-none").await {
        Ok(None) => report.check("a server looked up by external id", "none", "none", true),
        Ok(Some(s)) => report.check("a server looked up by external id", "none", format!("server {}", s.id), false),
        Err(e) => report.check("a server looked up by external id", "none", why(&e), false),
    };
    paging(panel, report).await;
}

async fn catalog(panel: &dyn Panel, report: &mut Report) {
    match panel.nodes().await {
        Ok(nodes) if !nodes.is_empty() => report.check(
            "nodes",
            "at least one, each with its location or tags",
            format!("{} node(s)", nodes.len()),
            true,
        ),
        Ok(_) => report.check("nodes", "at least one, each with its location or tags", "none", false),
        Err(e) => report.check("nodes", "at least one, each with its location or tags", why(&e), false),
    };
    // Pelican's application API has no nests (its eggs are top level): the panel says so here.
    let nests = match panel.nests().await {
        Ok(nests) => nests,
        Err(e) => {
            report.check("nests and eggs", "at least one egg", why(&e), false);
            return;
        }
    };
    let mut first = None;
    let mut eggs = 0;
    for nest in &nests {
        match panel.eggs(&nest.id).await {
            Ok(list) => {
                eggs += list.len();
                first = first.or(list.first().map(|e| (nest.id.clone(), e.id.clone())));
            }
            Err(e) => {
                report.check("nests and eggs", "at least one egg", format!("nest {}: {}", nest.id, why(&e)), false);
                return;
            }
        }
    }
    let got = format!("{} nest(s), {eggs} egg(s)", nests.len());
    if !report.check("nests and eggs", "at least one egg", got, eggs > 0) {
        return;
    }
    if let Some((nest, egg)) = first {
        let expected = "an egg with its variables and their rules";
        match panel.egg(&nest, &egg).await {
            Ok(e) => report.check(
                "an egg's variables",
                expected,
                format!("egg {egg}: {} variable(s)", e.variables.len()),
                true,
            ),
            Err(e) => report.check("an egg's variables", expected, why(&e), false),
        };
    }
}

/// `X-RateLimit-Limit` and `-Remaining` on an answer: the limiter follows the panel's windows from
/// them (without them, its budget is per rolling minute, and another client's use is unseen).
async fn rate_limit_headers(connected: &Connected, report: &mut Report) {
    let expected = "X-RateLimit-Limit and X-RateLimit-Remaining on every answer";
    let answer = raw(connected, if connected.flavor == Flavor::Pelican { "/nodes" } else { "/locations" }).await;
    let (ok, got) = match answer {
        Ok(response) => {
            let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            match (header("x-ratelimit-limit"), header("x-ratelimit-remaining")) {
                (Some(limit), Some(remaining)) => (true, format!("limit {limit}, {remaining} remaining")),
                // Wisp's headers are unknown: without them the budget is per rolling minute.
                _ if connected.flavor == Flavor::Wisp => {
                    (true, "absent (the budget is then kept per rolling minute)".into())
                }
                _ => (false, "absent: the panel's windows cannot be followed (is a proxy removing them?)".into()),
            }
        }
        Err(e) => (false, e),
    };
    report.check("rate-limit headers", expected, got, ok);
}

async fn paging(panel: &dyn Panel, report: &mut Report) {
    let expected = "pages of servers with their count, and an empty page past the end";
    let first = match panel.servers_page(1, 1).await {
        Ok(p) => p,
        Err(e) => {
            report.check("paging", expected, why(&e), false);
            return;
        }
    };
    match panel.servers_page(first.total_pages + 1, 1).await {
        Ok(past) if past.items.is_empty() => report.check(
            "paging",
            expected,
            format!("{} server(s) on {} page(s); past the end: empty", first.total, first.total_pages),
            true,
        ),
        Ok(past) => report.check("paging", expected, format!("{} server(s) past the end", past.items.len()), false),
        Err(e) => report.check("paging", expected, why(&e), false),
    };
}

/// A GET with the client's key and media type, past the client: the headers and the raw 404.
async fn raw(connected: &Connected, path: &str) -> Result<reqwest::Response, String> {
    let accept = match (connected.flavor, connected.wisp) {
        (Flavor::Pterodactyl | Flavor::Pelican, _) => "application/json",
        (Flavor::Wisp, crate::crd::WispApiVersion::V1) => "application/vnd.wisp.v1+json",
        (Flavor::Wisp, crate::crd::WispApiVersion::V2) => "application/vnd.wisp.v2+json",
    };
    let url = format!("{}/api/application{path}", connected.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(crate::panel::REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    client
        .get(url)
        .bearer_auth(connected.key.expose())
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .await
        .map_err(|e| connected.key.scrub(&e.to_string()))
}

/// The status, first error code and detail of a raw GET.
async fn raw_status(connected: &Connected, path: &str) -> Result<(u16, String, String), String> {
    let response = raw(connected, path).await?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let text = |p: &str| body.pointer(p).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    Ok((status, text("/errors/0/code"), connected.key.scrub(&text("/errors/0/detail"))))
}

/// The throwaway user and server's names: one run's, so that a cleanup finds only its own.
struct Throwaway {
    email: String,
    user_external_id: String,
    server_external_id: String,
}

impl Throwaway {
    fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let tag = &tag[..12];
        Self {
            email: format!("pterobox-conformance-{tag}@example.com"),
            user_external_id: format!("pterobox-conformance-user-{tag}"),
            server_external_id: format!("pterobox-conformance-server-{tag}"),
        }
    }
}

/// The write checks, then the cleanup whatever happened; whether Ctrl-C interrupted them.
async fn write(connected: &Connected, args: &Args, report: &mut Report) -> bool {
    let throwaway = Throwaway::new();
    let panel = connected.panel.as_ref();
    let interrupted = tokio::select! {
        () = write_steps(panel, args, &throwaway, report) => false,
        _ = tokio::signal::ctrl_c() => {
            report.check("the write checks", "run to their end", "interrupted (Ctrl-C): cleaning up", false);
            true
        }
    };
    cleanup(panel, &throwaway, report).await;
    interrupted
}

async fn write_steps(panel: &dyn Panel, args: &Args, throwaway: &Throwaway, report: &mut Report) {
    let user = NewUser {
        email: throwaway.email.clone(),
        username: None,
        first_name: "PteroBox".into(),
        last_name: "Conformance".into(),
        external_id: throwaway.user_external_id.clone(),
    };
    let user = match panel.create_user(&user).await {
        Ok(u) => {
            report.check("create a user", "a throwaway user", format!("user {} ({})", u.id, u.email), true);
            u
        }
        Err(e) => {
            report.check("create a user", "a throwaway user", why(&e), false);
            return;
        }
    };
    let (Some((nest, egg_id)), Some(location)) = (args.egg.clone(), args.location.clone()) else { return };
    let egg = match panel.egg(&nest, &egg_id).await {
        Ok(e) => e,
        Err(e) => {
            report.check("the egg to use", &format!("egg {nest}/{egg_id} with its variables"), why(&e), false);
            return;
        }
    };
    let given: BTreeMap<String, String> = args.environment.iter().cloned().collect();
    let environment = egg.environment(&given);
    let new = NewServer {
        name: "pterobox conformance".into(),
        description: "a throwaway server of pterobox conformance; it deletes it".into(),
        external_id: throwaway.server_external_id.clone(),
        user: user.id.clone(),
        nest,
        egg: egg_id.clone(),
        image: egg.docker_images.first().cloned().unwrap_or_default(),
        startup: egg.startup.clone(),
        environment: environment.clone(),
        limits: Limits { memory_mib: 256, swap_mib: 0, disk_mib: 512, io: 500, cpu_percent: 50 },
        features: FeatureLimits { databases: Some(0), allocations: Some(1), backups: Some(0) },
        locations: if panel.flavor() == Flavor::Pelican { Vec::new() } else { vec![location.clone()] },
        tags: if panel.flavor() == Flavor::Pelican { vec![location.clone()] } else { Vec::new() },
        port_range: args.port_range.clone(),
    };
    let created = match panel.create_server(&new).await {
        Ok(s) => {
            let got = format!("server {} on node {}", s.id, s.node);
            report.check("create a server", &format!("placed in location {location} (deploy)"), got, true);
            s
        }
        Err(e) => {
            report.check("create a server", &format!("placed in location {location} (deploy)"), why(&e), false);
            return;
        }
    };
    let read = match panel.server(&created.id).await {
        Ok(s) => s,
        Err(e) => {
            report.check("read it back", "the server with its allocation", why(&e), false);
            return;
        }
    };
    let ok = read.primary().is_some() && read.external_id.as_ref().is_some_and(|e| *e == *throwaway.server_external_id);
    let got = format!("allocation {}, external id {:?}", read.allocation, read.external_id);
    if !report.check("read it back", "the server with its allocation and external id", got, ok) {
        return;
    }
    if !resize(panel, &read, report).await {
        return;
    }
    let details = Details {
        name: "pterobox conformance (renamed)".into(),
        description: String::new(),
        user: user.id.clone(),
        external_id: throwaway.server_external_id.clone(),
    };
    let step = panel.update_details(&created.id, &details).await;
    let got = step.as_ref().map_or_else(why, |s| format!("external id {:?}", s.external_id));
    let ok = step.is_ok_and(|s| s.external_id.as_ref().is_some_and(|e| *e == *throwaway.server_external_id));
    if !report.check("update its details", "renamed, its external id kept", got, ok) {
        return;
    }
    let startup = Startup { startup: egg.startup.clone(), image: new.image.clone(), egg: egg_id, environment };
    let step = panel.update_startup(&created.id, &startup).await;
    let ok = step.is_ok();
    if !report.check(
        "update its startup",
        "every variable resent",
        step.map_or_else(|e| why(&e), |_| "done".into()),
        ok,
    ) {
        return;
    }
    for (suspend, what) in [(true, "suspend it"), (false, "unsuspend it")] {
        let step = if suspend { panel.suspend(&created.id).await } else { panel.unsuspend(&created.id).await };
        let now = match step {
            Ok(()) => panel.server(&created.id).await.map(|s| s.suspended),
            Err(e) => Err(e),
        };
        let ok = now.as_ref().is_ok_and(|s| *s == suspend);
        let got = now.map_or_else(|e| why(&e), |s| format!("suspended: {s}"));
        if !report.check(what, &format!("suspended: {suspend}"), got, ok) {
            return;
        }
    }
    let step = match panel.delete_server(&created.id).await {
        Ok(()) => panel.server(&created.id).await.map(drop),
        Err(e) => Err(e),
    };
    let ok = matches!(step, Err(PanelError::NotFound { .. }));
    let got = match step {
        Err(PanelError::NotFound { .. }) => "gone".to_string(),
        Ok(()) => "still there".to_string(),
        Err(e) => why(&e),
    };
    report.check("delete it", "gone (the panel's 404 after)", got, ok);
}

async fn resize(panel: &dyn Panel, read: &PanelServer, report: &mut Report) -> bool {
    let build = Build {
        allocation: read.allocation.to_string(),
        limits: Limits { memory_mib: read.limits.memory_mib + 128, ..read.limits },
        features: read.features,
        switches: read.switches,
    };
    let step = panel.update_build(&read.id, &build).await;
    let want = read.limits.memory_mib + 128;
    let ok = step.as_ref().is_ok_and(|s| s.limits.memory_mib == want && s.allocation == read.allocation);
    let got = step.map_or_else(|e| why(&e), |s| format!("{} MiB, allocation {}", s.limits.memory_mib, s.allocation));
    report.check("resize it", &format!("{want} MiB, the same allocation"), got, ok)
}

/// Removes the throwaway server and user, found by their external ids (a create whose answer was
/// lost left them unknown to us), and says whether anything was left.
async fn cleanup(panel: &dyn Panel, throwaway: &Throwaway, report: &mut Report) {
    let mut left = Vec::new();
    for attempt in 0..3 {
        left.clear();
        match panel.server_by_external_id(&throwaway.server_external_id).await {
            Ok(Some(s)) => {
                let deleted = match panel.delete_server(&s.id).await {
                    Ok(()) => Ok(()),
                    // Its node may be failing: the record goes anyway.
                    Err(_) => panel.force_delete_server(&s.id).await,
                };
                if let Err(e) = deleted {
                    left.push(format!("server {} ({})", s.id, why(&e)));
                }
            }
            Ok(None) => {}
            Err(e) => left.push(format!("the server, unknown: {}", why(&e))),
        }
        match panel.user_by_external_id(&throwaway.user_external_id).await {
            Ok(Some(u)) => {
                if let Err(e) = panel.delete_user(&u.id).await {
                    left.push(format!("user {} ({})", u.id, why(&e)));
                }
            }
            Ok(None) => {}
            Err(e) => left.push(format!("the user, unknown: {}", why(&e))),
        }
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1 + attempt)).await;
    }
    let got = if left.is_empty() { "nothing left".to_string() } else { format!("left: {}", left.join("; ")) };
    report.check("clean up", "the throwaway server and user gone", got, left.is_empty());
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::Args,
    }

    fn parse(egg: &str) -> Result<super::Args, clap::Error> {
        let argv = ["conformance", "--gamepanel", "p", "--write", "--location", "1", "--egg", egg];
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn egg_ids_are_integers_or_wisp_v2_strings() {
        let args = parse("1/5").expect("numeric ids");
        assert_eq!(args.egg, Some(("1".to_string(), "5".to_string())));
        let args = parse("nest_01kt0000000000000000000001/egg_01kt0000000000000000000003").expect("v2 ids");
        assert_eq!(args.egg.map(|e| e.1), Some("egg_01kt0000000000000000000003".to_string()));
        let refused = parse("1").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("expected NEST/EGG"), "{refused}");
        let refused = parse("1/ ").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("is not an id"), "{refused}");
    }
}
