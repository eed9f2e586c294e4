//! What a GameServer should look like on the panel (pure), and what differs from what is there.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::budget::{self, Amounts};
use crate::crd::{GameBox, GameServer, PanelId};
use crate::panel::{Build, Details, Digest, Egg, FeatureLimits, Limits, NewServer, PanelServer, Startup, as_stored};

/// The panel server a GameServer asks for: what a create would send, and whether it is suspended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub server: NewServer,
    pub suspended: bool,
    /// `spec.ports`, offsets first; the operator sets each variable to its port.
    pub ports: Vec<(String, super::ports::Want)>,
}

impl std::ops::Deref for Desired {
    type Target = NewServer;

    fn deref(&self) -> &NewServer {
        &self.server
    }
}

/// The desired server, from the egg the panel describes (read through the handle's egg cache); an
/// egg the panel does not have is the box's spec error.
pub(super) async fn from_panel(
    handle: &crate::panel::informer::PanelHandle,
    server: &GameServer,
    gbox: &GameBox,
    target: &super::admission::Target,
    reserved: &Amounts,
    suspended: bool,
) -> Result<Desired, super::converge::Refusal> {
    use super::converge::Refusal;
    let egg = handle.egg(&target.nest, &target.egg).await.map_err(|e| match e {
        crate::panel::PanelError::NotFound { .. } => Refusal::Spec(format!(
            "spec.eggs of box {}: nest {} egg {} does not exist on the panel",
            gbox.name_any(),
            target.nest,
            target.egg
        )),
        e => Refusal::Panel(e),
    })?;
    desired(server, gbox, &egg, reserved, &target.owner, suspended).map_err(Refusal::Spec)
}

fn truncate(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
    s
}

/// Builds the desired server from the GameServer, its box, its egg and its reservation, every string
/// as the panel will store it (trimmed: see [`as_stored`]), so that comparing it with what the panel
/// shows finds no difference where there is none. An error names the field that cannot be honoured.
pub fn desired(
    server: &GameServer,
    gbox: &GameBox,
    egg: &Egg,
    reserved: &Amounts,
    owner: &str,
    suspended: bool,
) -> Result<Desired, String> {
    let spec = &server.spec;
    let (name, description) = name_and_description(server, gbox)?;
    let swap = budget::units::to_mib(&gbox.spec.per_server.swap.0)
        .map_err(|e| format!("spec.perServer.swap of box {}: {e}", gbox.name_any()))?;
    let startup = as_stored(spec.startup.as_deref().unwrap_or(&egg.startup));
    if startup.is_empty() {
        return Err(format!("spec.startup: the startup command is blank (egg {:?} has none either)", egg.name));
    }
    Ok(Desired {
        server: NewServer {
            name,
            description,
            user: owner.to_string(),
            external_id: server.uid().unwrap_or_default(),
            nest: egg.nest.clone(),
            egg: egg.id.clone(),
            image: image(server, egg)?,
            startup: startup.to_string(),
            environment: environment(server, egg)?,
            limits: Limits {
                memory_mib: reserved.memory_mib,
                swap_mib: swap,
                disk_mib: reserved.disk_mib,
                io: u64::try_from(gbox.spec.per_server.io).unwrap_or(500),
                cpu_percent: reserved.cpu_percent,
            },
            features: FeatureLimits {
                databases: Some(reserved.databases),
                allocations: Some(reserved.allocations),
                backups: Some(reserved.backups),
            },
            locations: gbox.spec.locations.iter().map(PanelId::key).collect(),
            tags: gbox.spec.tags.clone(),
            port_range: gbox.spec.port_range.clone(),
        },
        suspended,
        ports: ports(server, egg)?,
    })
}

/// `spec.ports`, each naming a variable of the egg.
fn ports(server: &GameServer, egg: &Egg) -> Result<Vec<(String, super::ports::Want)>, String> {
    egg_variables_only(server.spec.ports.keys(), egg, "spec.ports")?;
    super::ports::wants(&server.spec.ports)
}

/// Every egg variable: the egg's defaults, overridden by `spec.environment`, which may only name
/// variables of the egg.
fn environment(server: &GameServer, egg: &Egg) -> Result<BTreeMap<String, String>, String> {
    let asked = &server.spec.environment;
    egg_variables_only(asked.keys(), egg, "spec.environment")?;
    Ok(egg.environment(asked).into_iter().map(|(k, v)| (k, as_stored(&v).to_string())).collect())
}

/// An error naming the first of `keys` (of `field`) that is not a variable of the egg.
fn egg_variables_only<'a>(mut keys: impl Iterator<Item = &'a String>, egg: &Egg, field: &str) -> Result<(), String> {
    match keys.find(|k| !egg.variables.iter().any(|v| &v.env_variable == *k)) {
        Some(key) => {
            let known: Vec<&str> = egg.variables.iter().map(|v| v.env_variable.as_str()).collect();
            Err(format!("{field}.{key}: not a variable of egg {:?} (its variables: {})", egg.name, known.join(", ")))
        }
        None => Ok(()),
    }
}

/// `spec.image`, one of the egg's images; else the egg's first.
fn image(server: &GameServer, egg: &Egg) -> Result<String, String> {
    match server.spec.image.as_deref().map(as_stored) {
        Some(image) if !egg.docker_images.iter().any(|i| as_stored(i) == image) => Err(format!(
            "spec.image: {image:?} is not an image of egg {:?} (its images: {})",
            egg.name,
            egg.docker_images.join(", ")
        )),
        Some(image) => Ok(image.to_string()),
        None => Ok(egg.docker_images.first().map(|i| as_stored(i).to_string()).unwrap_or_default()),
    }
}

/// The name (`spec.displayName`, else the box's `serverName` template, else the GameServer's name)
/// and description (`spec.description`, else the box's `serverDescription` template).
fn name_and_description(server: &GameServer, gbox: &GameBox) -> Result<(String, String), String> {
    let spec = &server.spec;
    let vars = crate::review::template_vars(gbox, &server.name_any());
    let render = |template: &str, field: &str| {
        budget::render(template, &vars).map_err(|e| format!("{field} of box {}: {e}", gbox.name_any()))
    };
    let name = match (&spec.display_name, &gbox.spec.server_name) {
        (Some(n), _) => n.clone(),
        (None, Some(t)) => render(t, "spec.serverName")?,
        (None, None) => server.name_any(),
    };
    // Cut to the panel's 191 characters, then trimmed again: a cut that ends in a space would
    // otherwise differ from what the panel keeps.
    let name = as_stored(&truncate(as_stored(&name).to_string(), 191)).to_string();
    if name.is_empty() {
        let from = match &spec.display_name {
            Some(_) => "spec.displayName".to_string(),
            None => format!("spec.serverName of box {}", gbox.name_any()),
        };
        return Err(format!("{from}: the server's name is blank, and the panel requires one"));
    }
    let description = match (&spec.description, &gbox.spec.server_description) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => render(t, "spec.serverDescription")?,
        (None, None) => String::new(),
    };
    Ok((name, as_stored(&description).to_string()))
}

impl Desired {
    /// The build update, if the panel's limits differ.
    pub fn build(&self, current: &PanelServer) -> Option<Build> {
        (current.limits != self.limits || current.features != self.features).then(|| Build {
            allocation: current.allocation.to_string(),
            limits: self.limits,
            features: self.features,
            switches: current.switches,
        })
    }

    /// The details update, if name, description, owner or external id differ.
    pub fn details(&self, current: &PanelServer) -> Option<Details> {
        let differs = current.name != Digest::of(&self.name)
            || current.description != Digest::of(&self.description)
            || current.user != self.user
            || current.external_id.as_ref().is_none_or(|e| *e != *self.external_id);
        differs.then(|| Details {
            name: self.name.clone(),
            description: self.description.clone(),
            user: self.user.clone(),
            external_id: self.external_id.clone(),
        })
    }

    /// The startup update, if the command, image, egg or any egg variable differs (keys the panel
    /// adds to `environment` itself are not egg variables and are ignored).
    pub fn startup(&self, current: &PanelServer) -> Option<Startup> {
        let variables_differ = self.environment.iter().any(|(k, v)| !current.environment.has(k, v));
        let differs = current.startup != Digest::of(&self.startup)
            || current.image != Digest::of(&self.image)
            || current.egg != self.egg
            || variables_differ;
        differs.then(|| Startup {
            startup: self.startup.clone(),
            image: self.image.clone(),
            egg: self.egg.clone(),
            environment: self.environment.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::{EggVariable, InstallState, Variables};

    fn gbox() -> GameBox {
        serde_yaml::from_str(include_str!("../../../examples/20-gamebox-alice.yaml")).expect("example box")
    }

    fn server(yaml: &str) -> GameServer {
        let mut s: GameServer = serde_yaml::from_str(yaml).expect("server");
        s.metadata.uid = Some("uid-1".into());
        s
    }

    fn egg() -> Egg {
        Egg {
            id: "3".into(),
            nest: "1".into(),
            name: "Paper".into(),
            docker_images: vec!["img:21".into(), "img:17".into()],
            startup: "java -jar {{SERVER_JARFILE}}".into(),
            variables: ["MINECRAFT_VERSION", "SERVER_JARFILE"]
                .iter()
                .map(|v| EggVariable {
                    name: v.to_string(),
                    env_variable: v.to_string(),
                    default_value: "d".into(),
                    rules: "".into(),
                })
                .collect(),
        }
    }

    const SURVIVAL: &str = "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {name: survival, namespace: customer-alice}\nspec:\n  box: basic\n  egg: paper\n  resources: {memory: 4Gi, disk: 50Gi, cpu: '2'}\n  environment: {MINECRAFT_VERSION: '1.21.1'}\n";

    fn reserved() -> Amounts {
        Amounts {
            memory_mib: 4096,
            disk_mib: 51200,
            cpu_percent: 200,
            servers: 1,
            databases: 0,
            allocations: 1,
            backups: 0,
        }
    }

    fn panel_server(d: &Desired) -> PanelServer {
        let mut environment: Variables = d.environment.iter().collect();
        environment.set("P_SERVER_UUID", "added by the panel");
        PanelServer {
            id: "42".into(),
            external_id: Some(d.external_id.as_str().into()),
            uuid: "u".into(),
            identifier: "u".into(),
            name: Digest::of(&d.name),
            description: Digest::of(&d.description),
            suspended: false,
            install: InstallState::Installed,
            limits: d.limits,
            features: d.features,
            user: d.user.as_str().into(),
            node: "1".into(),
            allocation: "118".into(),
            nest: d.nest.as_str().into(),
            egg: d.egg.as_str().into(),
            startup: Digest::of(&d.startup),
            image: Digest::of(&d.image),
            environment,
            allocations: vec![],
            switches: Default::default(),
        }
    }

    #[test]
    fn the_box_templates_name_and_describe_the_server() {
        let mut b = gbox();
        b.spec.server_description = Some("%product_name% (service %service_id%), until %service_expiration%".into());
        b.spec.expires_at = serde_json::from_value(serde_json::json!("2027-01-31T00:00:00Z")).expect("a time");
        let d = desired(&server(SURVIVAL), &b, &egg(), &reserved(), "7", false).unwrap();
        assert_eq!(d.name, "alice's survival");
        assert_eq!(d.description, "GameBox - Basic (service 4211), until 2027-01-31T00:00:00Z");
        assert_eq!(d.environment["MINECRAFT_VERSION"], "1.21.1");
        assert_eq!(d.environment["SERVER_JARFILE"], "d", "egg defaults fill the rest");
        assert_eq!((d.limits.memory_mib, d.limits.swap_mib, d.limits.io, d.limits.cpu_percent), (4096, 512, 500, 200));
        assert_eq!(d.image, "img:21");
        assert_eq!(d.port_range.as_deref(), Some("30100-30200"));
    }

    #[test]
    fn strings_are_compared_as_the_panel_stores_them() {
        let yaml = format!(
            "{SURVIVAL}  displayName: '  Survival  '\n  description: |\n    A world.\n  startup: \"  java -jar x.jar\\n\"\n"
        );
        let mut spec = server(&yaml);
        spec.spec.environment.insert("SERVER_JARFILE".into(), " server.jar \n".into());
        let d = desired(&spec, &gbox(), &egg(), &reserved(), "7", false).unwrap();
        assert_eq!((d.name.as_str(), d.description.as_str()), ("Survival", "A world."));
        assert_eq!(d.environment["SERVER_JARFILE"], "server.jar");
        assert_eq!(d.startup, "java -jar x.jar");
        // What the panel stores is what the operator wants: nothing to send again.
        let current = panel_server(&d);
        assert_eq!((d.details(&current), d.startup(&current)), (None, None));
        let long = format!("{SURVIVAL}  displayName: '{}  x'\n", "a".repeat(190));
        let cut = desired(&server(&long), &gbox(), &egg(), &reserved(), "7", false).unwrap();
        assert_eq!(cut.name, "a".repeat(190), "cut to 191 characters, then trimmed as the panel would");
        let blank = format!("{SURVIVAL}  displayName: ' \t'\n");
        let err = desired(&server(&blank), &gbox(), &egg(), &reserved(), "7", false).unwrap_err();
        assert!(err.starts_with("spec.displayName:"), "{err}");
    }

    /// A server's own `displayName` wins over its box's `serverName` template; without either, the
    /// panel name is the GameServer's name. The same order holds for the description.
    #[test]
    fn display_name_then_the_box_template_then_the_object_name() {
        let named = format!("{SURVIVAL}  displayName: Survival\n  description: Mine\n");
        let d = desired(&server(&named), &gbox(), &egg(), &reserved(), "7", false).unwrap();
        assert_eq!((d.name.as_str(), d.description.as_str()), ("Survival", "Mine"));
        let mut plain = gbox();
        (plain.spec.server_name, plain.spec.server_description) = (None, None);
        let d = desired(&server(SURVIVAL), &plain, &egg(), &reserved(), "7", false).unwrap();
        assert_eq!((d.name.as_str(), d.description.as_str()), ("survival", ""));
        let d = desired(&server(&named), &plain, &egg(), &reserved(), "7", false).unwrap();
        assert_eq!(d.name, "Survival");
    }

    #[test]
    fn an_unknown_variable_or_image_names_the_field() {
        let bad = SURVIVAL.replace("MINECRAFT_VERSION", "MC_VERSION");
        let err = desired(&server(&bad), &gbox(), &egg(), &reserved(), "7", false).unwrap_err();
        assert!(err.starts_with("spec.environment.MC_VERSION:"), "{err}");
        let bad = format!("{SURVIVAL}  image: other:1\n");
        let err = desired(&server(&bad), &gbox(), &egg(), &reserved(), "7", false).unwrap_err();
        assert!(err.starts_with("spec.image:"), "{err}");
        let bad = format!("{SURVIVAL}  ports:\n    QUERY_PORT: '+1'\n");
        let err = desired(&server(&bad), &gbox(), &egg(), &reserved(), "7", false).unwrap_err();
        assert!(err.starts_with("spec.ports.QUERY_PORT: not a variable of egg"), "{err}");
    }

    #[test]
    fn nothing_differs_when_the_panel_matches() {
        let d = desired(&server(SURVIVAL), &gbox(), &egg(), &reserved(), "7", false).unwrap();
        let current = panel_server(&d);
        assert_eq!((d.build(&current), d.details(&current), d.startup(&current)), (None, None, None));
    }

    #[test]
    fn each_difference_is_one_update_that_keeps_what_the_panel_needs() {
        let d = desired(&server(SURVIVAL), &gbox(), &egg(), &reserved(), "7", false).unwrap();
        let mut current = panel_server(&d);
        current.limits.memory_mib = 1024;
        current.external_id = None;
        current.environment.set("SERVER_JARFILE", "hacked.jar");
        let build = d.build(&current).expect("build");
        assert_eq!((build.allocation.as_str(), build.limits.memory_mib), ("118", 4096));
        assert_eq!(d.details(&current).expect("details").external_id, "uid-1");
        let startup = d.startup(&current).expect("startup");
        assert_eq!(startup.environment.len(), 2, "every variable, none of the panel's own keys");
    }
}
