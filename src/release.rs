//! `pterobox release`: the way out when the operator was uninstalled before its objects. A deleted
//! GameServer or GameBox keeps PteroBox's finalizer until the operator has cleaned up the panel;
//! without the operator it waits forever, and so does its namespace. This removes the finalizer,
//! after saying what that means (the panel servers stay on the panel, as with
//! `deletionPolicy: Orphan`) and asking.

use std::io::{BufRead, Write};

use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::crd::{GameBox, GameServer};
use crate::names::FINALIZER;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this namespace (default: every namespace).
    #[arg(long, short)]
    namespace: Option<String>,
    /// Every object with the finalizer, not only those being deleted (before deleting the CRDs).
    #[arg(long)]
    all: bool,
    /// Do not ask.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    cluster: crate::kubeconfig::ClusterArgs,
}

/// An object that holds the finalizer: its kind, namespace, name and the finalizers it keeps.
struct Held {
    kind: &'static str,
    namespace: String,
    name: String,
    resource_version: Option<String>,
    others: Vec<String>,
}

fn held<K: kube::Resource>(kind: &'static str, objects: Vec<K>, all: bool) -> Vec<Held> {
    objects
        .into_iter()
        .filter(|o| o.finalizers().iter().any(|f| f == FINALIZER))
        .filter(|o| all || o.meta().deletion_timestamp.is_some())
        .map(|o| Held {
            kind,
            namespace: o.namespace().unwrap_or_default(),
            name: o.name_any(),
            resource_version: o.resource_version(),
            others: o.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect(),
        })
        .collect()
}

pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let client = args.cluster.client().await?;
    let (servers, boxes): (Api<GameServer>, Api<GameBox>) = match &args.namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    // Servers first: a box being deleted waits for its servers.
    let (servers, boxes) = match (servers.list(&ListParams::default()).await, boxes.list(&ListParams::default()).await)
    {
        (Ok(servers), Ok(boxes)) => (servers.items, boxes.items),
        (Err(kube::Error::Api(e)), _) | (_, Err(kube::Error::Api(e))) if e.code == 404 => {
            println!("the PteroBox CRDs are not installed: nothing to release");
            return Ok(std::process::ExitCode::SUCCESS);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };
    let mut found = held("GameServer", servers, args.all);
    found.extend(held("GameBox", boxes, args.all));
    if found.is_empty() {
        println!("nothing holds the finalizer {FINALIZER}{}", if args.all { "" } else { " while being deleted" });
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!("These objects hold the finalizer {FINALIZER}:");
    for h in &found {
        println!("  {} {}/{}", h.kind, h.namespace, h.name);
    }
    println!(
        "Without it nothing cleans up the panel: their panel servers stay there (as with deletionPolicy: Orphan). \
         If the operator is still running, delete the objects and let it work instead."
    );
    if !args.yes {
        print!("Remove the finalizer from these {} object(s)? [y/N] ", found.len());
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing changed");
            return Ok(std::process::ExitCode::FAILURE);
        }
    }
    let mut failed = 0;
    for h in &found {
        // The resourceVersion makes it a no-op on an object that changed since it was listed.
        let patch = json!({"metadata": {"finalizers": h.others, "resourceVersion": h.resource_version}});
        let params = PatchParams::default();
        let result = match h.kind {
            "GameServer" => Api::<GameServer>::namespaced(client.clone(), &h.namespace)
                .patch(&h.name, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
            _ => Api::<GameBox>::namespaced(client.clone(), &h.namespace)
                .patch(&h.name, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
        };
        match result {
            Ok(()) => println!("released {} {}/{}", h.kind, h.namespace, h.name),
            Err(e) => {
                failed += 1;
                eprintln!("error: {} {}/{}: {e}", h.kind, h.namespace, h.name);
            }
        }
    }
    Ok(if failed == 0 { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}
